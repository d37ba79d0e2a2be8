/**
 * The modes of what doorsense writes into DATA_DIR: the database, the logs
 * and the admin token are readable by their owner only. Modes are set where
 * each file or directory is created (process.umask is left alone: it belongs
 * to the whole process and to its children).
 */
import { chmodSync } from 'node:fs'

/** Mode of a directory doorsense creates (DATA_DIR, its logs/): the owner only. */
export const PRIVATE_DIR_MODE = 0o700
/** Mode of the files doorsense writes (database, logs, admin token): the owner only. */
export const PRIVATE_FILE_MODE = 0o600

/**
 * Sets `file` to {@link PRIVATE_FILE_MODE}, however it was created (umask,
 * an older build, SQLite's 0644). A file that is not there (a -wal between
 * runs) or that belongs to another user (EPERM) is left as it is.
 */
export function makePrivate (file: string): void {
  try {
    chmodSync(file, PRIVATE_FILE_MODE)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'EPERM') throw err
  }
}
