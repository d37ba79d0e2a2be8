import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Storage } from '../../../core/storage.js'
import { SampleStore, type SampleDeletion } from '../../../ml/store/sample-store.js'
import { tempDir } from '../../helper.js'

test('every delete is a `deleted` event on the store that ran it, with what it removed', (t) => {
  const storage = new Storage(tempDir(t))
  t.after(() => storage.close())
  const samples = new SampleStore(storage)
  const heard: SampleDeletion[] = []
  samples.on('deleted', (deletion) => heard.push(deletion))
  samples.insert(Array.from({ length: 5 }, (_, i) => ({
    kind: 'csi' as const,
    angle: i < 3 ? 0 : 15,
    features: new Float32Array(106),
    device: 1,
    source: 'calibration' as const
  })))
  assert.equal(samples.delete('csi', { device: 1, angle: 15 }), 2)
  assert.equal(samples.delete('csi', { device: 2 }), 0)
  assert.deepEqual(heard, [{ kind: 'csi', filter: { device: 1, angle: 15 }, removed: 2 }, { kind: 'csi', filter: { device: 2 }, removed: 0 }])
})
