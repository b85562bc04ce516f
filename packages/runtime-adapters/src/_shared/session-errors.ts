/** Errors both adapters raise in the same words. */
import { DcaeError } from '@dcae/core';

/** An error's message (or the thrown value as text), trimmed. */
export function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).trim();
}

export function sessionDisposed(): DcaeError {
  return new DcaeError(
    'SESSION_DISPOSED',
    'The session was disposed; create a new session to run the model again.',
  );
}

export function runtimeDisposed(): DcaeError {
  return new DcaeError(
    'SESSION_DISPOSED',
    'The runtime was disposed; create a new runtime to create sessions.',
  );
}

export function checkModelBytes(model: unknown): asserts model is Uint8Array {
  if (!(model instanceof Uint8Array)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `createSession() takes the ONNX model as a Uint8Array; got ${String(model)}.`,
    );
  }
}
