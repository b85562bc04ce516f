/**
 * The input gallery of the Encode → decode view: the bundled fixture's reference input (while a
 * random-weight test fixture is chosen), the default model's held-out photos, the drawn samples,
 * and images the user drops or picks. Choosing writes the image
 * to the store and switches the results area to a preview of it; a refused upload clears the
 * choice, so nothing on the page goes on describing the previous image.
 */
import type { RgbImage } from '@dcae/autoencoder';
import { tensorToImages } from '@dcae/autoencoder';
import type { HostTensor } from '@dcae/core';
import { parseSafetensors } from '@dcae/core';
import { drawImage } from './dom.js';
import { decodeImageFile, limitSize } from './image-input.js';
import type { Page } from './jobs.js';
import { failed, toJobError } from './jobs.js';
import { DEFAULT_MODEL_PHOTOS } from './model-source.js';
import { SAMPLES } from './samples.js';
import type { ImageChoice, PageState } from './state.js';
import { withReconstruct } from './state.js';

export interface Gallery {
  /** Draws the sample buttons when the tab, the choice or the reference preview changed. */
  render(state: PageState, previous: PageState | undefined): void;
  /** The first drawn sample, as a choice. */
  firstSample(): ImageChoice;
  /** Fetches the bundled fixture's input image for its button and the preview. */
  loadReference(name: string): Promise<void>;
  /** Fetches and decodes the default model's held-out photos; returns the first as a choice. */
  loadPhotos(): Promise<ImageChoice | undefined>;
  /** The first held-out photo when loaded, else the first drawn sample. */
  firstPhoto(): ImageChoice;
  useFile(file: File): Promise<void>;
}

export function createGallery(page: Page, container: HTMLElement): Gallery {
  const { store } = page;
  // Drawn once per sample: pure functions of the sample id, not page state.
  const images = new Map<string, RgbImage>();
  const thumbnails = new Map<string, RgbImage>();
  const sampleImage = (id: string): RgbImage => {
    let image = images.get(id);
    if (image === undefined) images.set(id, (image = SAMPLES.find((s) => s.id === id)!.make()));
    return image;
  };
  const thumbnail = (id: string): RgbImage => {
    let image = thumbnails.get(id);
    if (image === undefined) thumbnails.set(id, (image = limitSize(sampleImage(id), 96)));
    return image;
  };
  const sampleChoice = (id: string): ImageChoice => {
    const sample = SAMPLES.find((s) => s.id === id)!;
    return { kind: 'image', id, label: sample.label, image: sampleImage(id), transparent: 0 };
  };
  const choose = (image: ImageChoice): void =>
    store.update((s) => withReconstruct(s, { image, shows: 'preview', outcome: undefined }));

  const button = (
    id: string,
    label: string,
    short: string,
    image: RgbImage | undefined,
    pressed: boolean,
    onClick: () => void,
  ): HTMLButtonElement => {
    const b = document.createElement('button');
    b.dataset.sample = id;
    b.title = label;
    b.setAttribute('aria-pressed', String(pressed));
    const canvas = document.createElement('canvas');
    if (image) drawImage(canvas, image);
    const caption = document.createElement('span');
    caption.textContent = short;
    b.append(canvas, caption);
    b.addEventListener('click', onClick);
    return b;
  };

  const photoThumbnail = (photo: { id: string; image: RgbImage }): RgbImage => {
    let image = thumbnails.get(photo.id);
    if (image === undefined) thumbnails.set(photo.id, (image = limitSize(photo.image, 96)));
    return image;
  };
  const photoChoice = (photo: { id: string; label: string; image: RgbImage }): ImageChoice => ({
    kind: 'image',
    id: photo.id,
    label: photo.label,
    image: photo.image,
    transparent: 0,
  });

  return {
    firstSample: () => sampleChoice(SAMPLES[0]!.id),
    firstPhoto() {
      const photo = store.get().reconstruct.photos?.[0];
      return photo ? photoChoice(photo) : sampleChoice(SAMPLES[0]!.id);
    },
    async loadPhotos() {
      const base = new URL(import.meta.env.BASE_URL, location.origin);
      const photos: { id: string; label: string; image: RgbImage }[] = [];
      for (const { id, label, path } of DEFAULT_MODEL_PHOTOS) {
        const response = await fetch(new URL(path, base));
        if (!response.ok) continue;
        const { image } = await decodeImageFile(await response.blob(), path);
        photos.push({ id, label, image });
      }
      store.update((s) => withReconstruct(s, { photos }));
      return photos[0] ? photoChoice(photos[0]) : undefined;
    },
    render(state, previous) {
      const { tab, image, reference, photos } = state.reconstruct;
      const before = previous?.reconstruct;
      if (
        before &&
        before.tab === tab &&
        before.image === image &&
        before.reference === reference &&
        before.photos === photos
      )
        return;
      const photoButtons = (photos ?? []).map((photo) =>
        button(
          photo.id,
          photo.label,
          photo.label.split(' ')[0]!,
          photoThumbnail(photo),
          image.kind === 'image' && image.id === photo.id,
          () => choose(photoChoice(photo)),
        ),
      );
      const sampleButtons = SAMPLES.map((sample) =>
        button(
          sample.id,
          sample.label,
          sample.short,
          thumbnail(sample.id),
          image.kind === 'image' && image.id === sample.id,
          () => choose(sampleChoice(sample.id)),
        ),
      );
      const buttons = [...photoButtons, ...sampleButtons];
      if (tab === 'fixture' && reference !== undefined)
        buttons.unshift(
          button(
            'fixture-sample',
            'The fixture’s reference input',
            'Reference',
            reference?.image,
            image.kind === 'fixture-sample',
            () => choose({ kind: 'fixture-sample' }),
          ),
        );
      container.replaceChildren(...buttons);
    },
    async loadReference(name) {
      const url = new URL(
        `fixtures/dcae/${encodeURIComponent(name)}/input.safetensors`,
        new URL(import.meta.env.BASE_URL, location.origin),
      );
      const response = await fetch(url);
      if (!response.ok) return;
      const sample = parseSafetensors(new Uint8Array(await response.arrayBuffer()), {
        name: 'input.safetensors',
      }).tensor('sample') as HostTensor<'float32'>;
      const [, ...rest] = sample.shape;
      const size = rest.reduce((a, b) => a * b, 1);
      const image = tensorToImages({
        dtype: 'float32',
        shape: [1, ...rest],
        data: sample.data.subarray(0, size),
      })[0]!;
      store.update((s) => withReconstruct(s, { reference: { name, image } }));
    },
    async useFile(file) {
      try {
        const { image, transparent } = await decodeImageFile(file, file.name);
        choose({ kind: 'image', id: 'file', label: file.name, image, transparent });
      } catch (error) {
        const refused = toJobError(error);
        const code = refused.code === 'INTERNAL' ? 'IMAGE_CORRUPT' : refused.code;
        const problem = { code, message: refused.message };
        store.update((s) =>
          failed(
            withReconstruct(s, {
              image: { kind: 'rejected', label: file.name, error: problem },
              shows: 'preview',
              outcome: undefined,
            }),
            problem,
            'reconstruct',
            false,
          ),
        );
      }
    },
  };
}
