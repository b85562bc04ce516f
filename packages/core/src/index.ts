export { DCAE_ERROR_CODES, DcaeError, formatShape, invariant } from './errors.js';
export type { DcaeErrorCategory, DcaeErrorCode, DcaeErrorHint, DcaeErrorOptions } from './errors.js';
export { DTYPE_ARRAYS, DTYPE_BYTES, DTYPES, isDType } from './tensor/dtype.js';
export type { AnyTypedArray, DType, DTypeArrayMap, TypedArrayFor } from './tensor/dtype.js';
export type { HostTensor } from './tensor/host-tensor.js';
export { numel, sameShape, strides } from './tensor/shape.js';
export { checkHostTensor, hostTensor, toFloat32, zeros } from './tensor/host-tensor.js';
export {
  float16ArrayToFloat32,
  float16BitsToFloat32Bits,
  float16ToFloat32,
  float32ArrayToFloat16,
  float32BitsToFloat16,
  float32ToFloat16,
} from './tensor/float16.js';
export {
  bfloat16ArrayToFloat32,
  bfloat16ToFloat32,
  float32ArrayToBfloat16,
  float32BitsToBfloat16,
  float32ToBfloat16,
} from './tensor/bfloat16.js';
export { createRng } from './tensor/random.js';
export type { Rng } from './tensor/random.js';
export { SAFETENSORS_DTYPE_BITS, isSafetensorsDType } from './safetensors/dtype.js';
export type { SafetensorsDType } from './safetensors/dtype.js';
export type { SafetensorsHeader, SafetensorsOptions, SafetensorsTensorInfo } from './safetensors/header.js';
export { blobSource, bytesSource, httpRangeSource } from './safetensors/byte-source.js';
export type { ByteSource, HttpRangeSourceOptions } from './safetensors/byte-source.js';
export { openSafetensors, parseSafetensors } from './safetensors/reader.js';
export type { SafetensorsBuffer, SafetensorsFile } from './safetensors/reader.js';
export { openPth } from './torch/reader.js';
export type { PthFile, PthOptions, PthTensorInfo } from './torch/reader.js';
export { TORCH_DTYPE_BYTES, TORCH_STORAGE_DTYPES, unpickleStateDict } from './torch/pickle.js';
export type { TorchDType, TorchStorageType } from './torch/pickle.js';
export { entryDataOffset, readZipDirectory } from './torch/zip.js';
export { serializePth, zipStored } from './torch/writer.js';
export type { ZipRecord } from './torch/writer.js';
export type { ZipEntry, ZipLimits } from './torch/zip.js';
export { safetensorsChunks, serializeSafetensors } from './safetensors/writer.js';
export type { MetadataToWrite, TensorsToWrite } from './safetensors/writer.js';
export { parseJsonConfig } from './config/parse-json-config.js';
export type { ParseJsonConfigOptions } from './config/parse-json-config.js';
export type { JsonValue } from './config/json-scanner.js';
export { ConfigReader } from './config/config-reader.js';
export { closestNames } from './config/closest-names.js';
export type { ConfigProblem, FinishOptions, IntRange } from './config/config-reader.js';
