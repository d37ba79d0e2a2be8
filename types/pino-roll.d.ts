// pino-roll ships no types; this is the part of its API doorsense uses.
declare module 'pino-roll' {
  import type SonicBoom from 'sonic-boom'
  interface PinoRollOptions {
    file: string | (() => string)
    size?: string | number
    frequency?: 'daily' | 'hourly' | number
    extension?: string
    mkdir?: boolean
    /** Mode of each file it creates (passed to sonic-boom's open). */
    mode?: number
    symlink?: boolean
    dateFormat?: string
    limit?: { count?: number, removeOtherLogFiles?: boolean }
  }
  export default function pinoRoll (options: PinoRollOptions): Promise<SonicBoom>
}
