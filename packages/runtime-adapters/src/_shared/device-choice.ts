/** How both adapters check `settings.devices` and decide which devices to try. */
import { DcaeError } from '@dcae/core';

interface Status<D extends string> {
  readonly device: D;
  readonly available: boolean;
  readonly auto: boolean;
  readonly reason: string;
}

/** Throws INVALID_ARGUMENT unless `devices` is 'auto' or a non-empty list of distinct devices from `all`. */
export function checkDeviceList<D extends string>(devices: unknown, all: readonly D[]): void {
  if (devices === 'auto') return;
  const valid =
    Array.isArray(devices) &&
    devices.length > 0 &&
    (devices as readonly unknown[]).every((d) => all.includes(d as D)) &&
    new Set(devices).size === devices.length;
  if (!valid) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `settings.devices must be 'auto' or a non-empty list of distinct devices from ${all.join(', ')}; got ${JSON.stringify(devices)}.`,
    );
  }
}

/**
 * 'auto': every device found, selected when its status says so. A list: those devices, each of
 * which must be available (DEVICE_UNAVAILABLE names the missing ones and why).
 */
export function decideDevices<D extends string>(
  requested: readonly D[] | 'auto',
  found: readonly Status<D>[],
): { device: D; selected: boolean; reason: string }[] {
  const statusOf = (device: D): Status<D> => found.find((s) => s.device === device)!;
  if (requested === 'auto')
    return found.map(({ device, auto, reason }) => ({ device, selected: auto, reason }));
  const missing = requested.map(statusOf).filter((s) => !s.available);
  if (missing.length > 0) {
    throw new DcaeError(
      'DEVICE_UNAVAILABLE',
      missing.map((s) => `Device '${s.device}' is unavailable: ${s.reason}`).join(' '),
      {
        detail: { devices: missing },
        hint: {
          library: "Use devices: 'auto' to fall back to what is available.",
          cli: 'pass --device auto (the best available device) or --device cpu; `dcae info` lists the devices and why',
        },
      },
    );
  }
  return requested.map((device) => ({ device, selected: true, reason: statusOf(device).reason }));
}
