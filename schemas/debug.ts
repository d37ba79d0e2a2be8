import { Type, type Static } from '@sinclair/typebox'

/** POST /debug/post/echo: any JSON value, answered unchanged. */
export const EchoBody = Type.Unknown({ description: 'any JSON value; answered unchanged' })
export type EchoBody = Static<typeof EchoBody>

/**
 * The legacy logging switch. The original read Python's `str(True)`, so the
 * strings "True"/"False" stay valid beside JSON booleans. An `enum` without a
 * `type` keeps ajv's coerceTypes from turning null or 0 into `false`.
 */
export const LoggingSwitch = Type.Unsafe<'True' | 'False' | boolean>({
  enum: ['True', 'False', true, false],
  description: '"True" / "False" (the original\'s spelling) or a JSON boolean'
})

/** POST /debug/post/enable_logging body. */
export const EnableLoggingBody = Type.Object({
  ENABLED: LoggingSwitch
}, { title: 'EnableLoggingBody' })
export type EnableLoggingBody = Static<typeof EnableLoggingBody>

/** POST /debug/post/enable_logging answer: the setting now in force. */
export const EnableLoggingResponse = Type.Object({
  ENABLED: Type.Boolean({ description: 'whether request logging is on now' }),
  message: Type.String()
}, { title: 'EnableLoggingResponse' })
export type EnableLoggingResponse = Static<typeof EnableLoggingResponse>

/** POST /debug/post/redeploy answer. */
export const RedeployAccepted = Type.Object({
  accepted: Type.Literal(true),
  configured: Type.Boolean({ description: 'false when redeploy is not wired on this host: nothing was started' }),
  pid: Type.Optional(Type.Integer({ description: 'pid of the detached bin/redeploy process' }))
}, { title: 'RedeployAccepted' })
export type RedeployAccepted = Static<typeof RedeployAccepted>

/** A legacy answer that is a bare string, sent as text/plain (the original's Flask routes returned strings). */
export const PlainText = Type.String({ description: 'text/plain' })

/** GET /debug/get/training_failure answer. */
export const TrainingFailureReport = Type.Object({
  failed: Type.Boolean({ description: 'whether a training run has failed since the model handler started' }),
  message: Type.String({ description: 'the last training error, or a placeholder saying there is none' }),
  at: Type.Optional(Type.String({ format: 'date-time' })),
  version: Type.Optional(Type.String({ description: 'the model version whose training failed' }))
}, { title: 'TrainingFailureReport' })
export type TrainingFailureReport = Static<typeof TrainingFailureReport>
