import type * as tfjs from '@tensorflow/tfjs'

/** A model's topology and weights, captured in memory instead of written anywhere. */
export async function captureArtifacts (tf: typeof tfjs, model: tfjs.LayersModel): Promise<tfjs.io.ModelArtifacts> {
  let captured: tfjs.io.ModelArtifacts | undefined
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    captured = artifacts
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
  }))
  if (!captured) throw new Error('tfjs saved no model artifacts')
  return captured
}
