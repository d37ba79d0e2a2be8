/**
 * The page's data types, all taken from the typed client generated from
 * openapi.json (client/schema.d.ts): a schema change that breaks the page
 * breaks `npm run typecheck`. Types only; never served.
 */
import type { paths } from '../../../client/schema'

export type Paths = paths

/** The JSON body of a route's 2xx answer. */
type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never
type Ok<O> = O extends { responses: infer Rs } ? JsonOf<Rs[Extract<keyof Rs, 200 | 202>]> : never

/** What GET `P` answers. */
export type GetJson<P extends keyof paths> = paths[P] extends { get: infer O } ? Ok<O> : never
/** What POST `P` answers. */
export type PostJson<P extends keyof paths> = paths[P] extends { post: infer O } ? Ok<O> : never

export type Door = GetJson<'/doors/{id}'>
export type HomeAssistantStatus = GetJson<'/home-assistant/status'>
export type ClusterStatus = GetJson<'/cluster'>

export type DoorState = Door['state']
export type DoorReason = NonNullable<Door['reason']>
export type DoorCalibration = Door['calibration']
export type CalibrationResult = NonNullable<DoorCalibration['result']>
export type SelfCheck = NonNullable<CalibrationResult['selfCheck']>
export type AjarCheck = SelfCheck['checks'][number]
export type AngleReadings = CalibrationResult['perAngle'][number]
export type KnownDevice = GetJson<'/app/get/known_servers'>[number]
export type ModelList = GetJson<'/training/get/models'>
export type ModelVersion = ModelList['versions'][number]
export type TrainingProgress = GetJson<'/training/get/progress'>
export type EvaluationAnswer = GetJson<'/training/get/evaluation'>
export type ErrorBody = { statusCode: number, error: string, message: string, code?: string }
