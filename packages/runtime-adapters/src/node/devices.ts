/**
 * Which onnxruntime-node execution providers can run here, found from files alone (the native
 * binding is not loaded): the CUDA provider libraries next to the binding, a Vulkan loader and
 * driver for WebGPU. Every "no" carries the reason and the fix.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, delimiter, dirname, join } from 'node:path';
import { DcaeError } from '@dcae/core';

/** Devices of the node adapter, best first. */
export type NodeDevice = 'cuda' | 'webgpu' | 'cpu';
export const NODE_DEVICES: readonly NodeDevice[] = ['cuda', 'webgpu', 'cpu'];

export interface NodeDeviceStatus {
  readonly device: NodeDevice;
  /** Whether onnxruntime-node can try the device on this machine. */
  readonly available: boolean;
  /** Whether `devices: 'auto'` tries it: false when unavailable or when only a software driver was found. */
  readonly auto: boolean;
  /** What was found, or why the device cannot run here and how to fix that. */
  readonly reason: string;
}

/** Where onnxruntime-node is installed. */
export interface OrtInstallation {
  readonly version: string;
  /** The folder holding `onnxruntime_binding.node` and the provider libraries for this platform. */
  readonly bindingDir: string;
  readonly packageDir: string;
}

const require = createRequire(import.meta.url);

/** Finds onnxruntime-node, or throws RUNTIME_UNAVAILABLE saying how to install it. */
export function locateOnnxruntimeNode(): OrtInstallation {
  let packageJson: string;
  try {
    packageJson = require.resolve('onnxruntime-node/package.json');
  } catch (cause) {
    throw new DcaeError(
      'RUNTIME_UNAVAILABLE',
      'onnxruntime-node is not installed; @dcae/runtime-adapters/node needs it (an optional peer dependency). ' +
        'Install it with `ONNXRUNTIME_NODE_INSTALL=skip pnpm add onnxruntime-node@^1.30.0`.',
      { cause },
    );
  }
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
  const packageDir = dirname(packageJson);
  return {
    version,
    packageDir,
    bindingDir: join(packageDir, 'bin', 'napi-v6', process.platform, process.arch),
  };
}

/** What each node device needs and whether it is here, best first. Reads files only; cheap. */
export function listNodeDevices(): NodeDeviceStatus[] {
  let installation: OrtInstallation;
  try {
    installation = locateOnnxruntimeNode();
  } catch (error) {
    const reason = (error as Error).message;
    return NODE_DEVICES.map((device) => ({ device, available: false, auto: false, reason }));
  }
  return [cudaStatus(installation), webgpuStatus(installation), cpuStatus(installation)];
}

function cpuStatus({ bindingDir, version }: OrtInstallation): NodeDeviceStatus {
  if (!existsSync(join(bindingDir, 'onnxruntime_binding.node'))) {
    return unavailable(
      'cpu',
      `onnxruntime-node@${version} has no prebuilt binding for ${process.platform}-${process.arch} (looked in ${bindingDir}).`,
    );
  }
  return {
    device: 'cpu',
    available: true,
    auto: true,
    reason: `onnxruntime-node@${version} binding for ${process.platform}-${process.arch}.`,
  };
}

const CUDA_LIBRARIES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];

function cudaStatus({ bindingDir, packageDir }: OrtInstallation): NodeDeviceStatus {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return unavailable(
      'cuda',
      `onnxruntime-node ships CUDA provider libraries only for linux-x64, not ${process.platform}-${process.arch}.`,
    );
  }
  const missing = CUDA_LIBRARIES.filter((file) => !existsSync(join(bindingDir, file)));
  if (missing.length > 0) {
    return unavailable(
      'cuda',
      `onnxruntime-node's CUDA provider libraries are not installed (${missing.join(', ')} missing in ${bindingDir}); ` +
        'its install script downloads them from nuget.org and is skipped by default. ' +
        `Run \`node ${join(packageDir, 'script', 'install.js')} --onnxruntime-node-install=cuda12\`, or reinstall with ` +
        '`ONNXRUNTIME_NODE_INSTALL=cuda12 pnpm install` where onnxruntime-node may run its install script. ' +
        'The host also needs CUDA 12 and cuDNN 9.',
    );
  }
  const driver = '/proc/driver/nvidia/version';
  if (!existsSync(driver)) {
    return unavailable(
      'cuda',
      `The CUDA provider libraries are installed but no NVIDIA driver is loaded (${driver} is missing).`,
    );
  }
  return {
    device: 'cuda',
    available: true,
    auto: true,
    reason: `CUDA provider libraries in ${bindingDir} and an NVIDIA driver; the host must also have CUDA 12 and cuDNN 9 on its library path.`,
  };
}

/** Software Vulkan drivers: WebGPU runs on them, about 100× slower than the cpu device. */
const SOFTWARE_VULKAN = /swiftshader|lvp|lavapipe|llvmpipe/i;

function webgpuStatus({ version }: OrtInstallation): NodeDeviceStatus {
  if (process.platform !== 'linux') {
    // Dawn uses Metal or Direct3D 12 there; whether an adapter exists shows only when a session starts.
    return {
      device: 'webgpu',
      available: true,
      auto: true,
      reason: `Not checked on ${process.platform}; a failing session falls back to the next device.`,
    };
  }
  const loader = findLibrary('libvulkan.so.1');
  if (loader === undefined) {
    return unavailable(
      'webgpu',
      `onnxruntime-node@${version}'s WebGPU provider needs the Vulkan loader libvulkan.so.1, which was not found. ` +
        'Install it (Debian/Ubuntu: `apt-get install libvulkan1`) plus a Vulkan driver for the GPU.',
    );
  }
  const drivers = vulkanDrivers();
  if (drivers.length === 0) {
    return unavailable(
      'webgpu',
      `The Vulkan loader is at ${loader} but no Vulkan driver manifest (ICD) was found in VK_DRIVER_FILES, VK_ICD_FILENAMES or the vulkan/icd.d folders; install the GPU's Vulkan driver.`,
    );
  }
  const hardware = drivers.filter(
    (file) => !SOFTWARE_VULKAN.test(basename(file)) && !SOFTWARE_VULKAN.test(readText(file)),
  );
  const gpu = gpuDeviceNodes();
  if (hardware.length > 0 && gpu.length > 0) {
    return {
      device: 'webgpu',
      available: true,
      auto: true,
      reason: `Vulkan loader ${loader}; GPU ${gpu.join(', ')}; drivers ${hardware.join(', ')}.`,
    };
  }
  const why =
    hardware.length === 0
      ? 'only software Vulkan drivers were found'
      : 'no GPU device node (/dev/dri/renderD*, /dev/nvidia0) exists';
  if (hardware.length < drivers.length) {
    return {
      device: 'webgpu',
      available: true,
      auto: false,
      reason: `The Vulkan loader is at ${loader} but ${why}; WebGPU may run on a software driver, about 100× slower than cpu, so 'auto' skips it.`,
    };
  }
  return unavailable('webgpu', `The Vulkan loader is at ${loader} but ${why}.`);
}

/**
 * Where browsers ship SwiftShader's Vulkan driver manifest: Debian/Ubuntu's chromium(-common),
 * Fedora's chromium, Google Chrome.
 */
const SWIFTSHADER_MANIFESTS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib64/chromium-browser/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

/**
 * The manifest of a software Vulkan driver on which onnxruntime-node's WebGPU provider (Dawn) finds
 * an adapter on a machine without a GPU: SwiftShader as Chromium ships it, or undefined. Mesa's
 * lavapipe (Debian 12's `mesa-vulkan-drivers` 22.3) is not one: Dawn refuses it ("Vulkan
 * shaderUniform*ArrayDynamicIndexing required"). For conformance tests and benches (docs/training.md,
 * "Conformance: CPU vs WebGPU"): point `VK_DRIVER_FILES` at it before the first webgpu session.
 * The Vulkan loader itself (`libvulkan1`) is still needed. Its speed is not a GPU's.
 */
export function findSoftwareVulkanDriver(): string | undefined {
  return SWIFTSHADER_MANIFESTS.find((file) => existsSync(file));
}

function unavailable(device: NodeDevice, reason: string): NodeDeviceStatus {
  return { device, available: false, auto: false, reason };
}

function findLibrary(file: string): string | undefined {
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean),
    `/usr/lib/${triplet}`,
    `/lib/${triplet}`,
    '/usr/lib64',
    '/lib64',
    '/usr/lib',
    '/lib',
    '/usr/local/lib',
  ];
  return dirs.map((dir) => join(dir, file)).find((path) => existsSync(path));
}

/** Vulkan driver manifests the loader would consider (the explicit env lists win, as in the loader). */
function vulkanDrivers(): string[] {
  const explicit = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (explicit !== undefined && explicit !== '')
    return explicit.split(delimiter).filter((file) => existsSync(file));
  const dataDirs = (process.env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share').split(delimiter);
  const folders = ['/etc/vulkan/icd.d', ...dataDirs.map((dir) => join(dir, 'vulkan', 'icd.d'))];
  return folders.flatMap((folder) => listJson(folder));
}

function listJson(folder: string): string[] {
  return listDir(folder)
    .filter((name) => name.endsWith('.json'))
    .map((name) => join(folder, name));
}

function gpuDeviceNodes(): string[] {
  const render = listDir('/dev/dri')
    .filter((name) => name.startsWith('renderD'))
    .map((name) => `/dev/dri/${name}`);
  return existsSync('/dev/nvidia0') ? [...render, '/dev/nvidia0'] : render;
}

function listDir(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
