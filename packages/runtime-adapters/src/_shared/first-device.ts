import { DcaeError } from '@dcae/core';

/** A device that was not tried, and why. */
export interface SkippedDevice<D extends string> {
  readonly device: D;
  readonly reason: string;
}

/** A device whose session creation failed for a reason of its own (another device may do). */
export interface DeviceFailure<D extends string> {
  readonly device: D;
  readonly error: unknown;
}

export interface DeviceAttempts<D extends string, S> {
  /** The devices to try, best first. */
  readonly devices: readonly D[];
  /** Why `device` must not be tried for this model, or undefined to try it. */
  skip?(device: D): string | undefined;
  /**
   * Creates the session on `device`. A rejection is that device's failure unless `fatal` says the
   * error stops every try (a `DcaeError` always does: bad input, abort, a model the spec refuses).
   */
  create(device: D): Promise<S>;
  /** The error to throw instead of trying the next device, or undefined to try it. */
  fatal?(error: unknown): Error | undefined;
}

export type DeviceOutcome<D extends string, S> =
  | {
      readonly session: S;
      readonly device: D;
      readonly failures: readonly DeviceFailure<D>[];
      readonly skipped: readonly SkippedDevice<D>[];
    }
  | {
      readonly session: undefined;
      readonly failures: readonly DeviceFailure<D>[];
      readonly skipped: readonly SkippedDevice<D>[];
    };

/**
 * Tries the devices in order and returns the first session created, with the devices that
 * failed or were skipped before it; or, when none accepted the model, every failure and skip
 * (the adapter words the error). Both runtime adapters (node and web) create sessions this way.
 */
export async function firstDeviceThatAccepts<D extends string, S>(
  attempts: DeviceAttempts<D, S>,
): Promise<DeviceOutcome<D, S>> {
  const failures: DeviceFailure<D>[] = [];
  const skipped: SkippedDevice<D>[] = [];
  for (const device of attempts.devices) {
    const reason = attempts.skip?.(device);
    if (reason !== undefined) {
      skipped.push({ device, reason });
      continue;
    }
    let session: S;
    try {
      session = await attempts.create(device);
    } catch (error) {
      if (DcaeError.is(error)) throw error;
      const fatal = attempts.fatal?.(error);
      if (fatal !== undefined) throw fatal;
      failures.push({ device, error });
      continue;
    }
    return { session, device, failures, skipped };
  }
  return { session: undefined, failures, skipped };
}
