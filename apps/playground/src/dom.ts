/** Small drawing and formatting helpers shared by the views. */
import type { RgbImage } from '@dcae/autoencoder';
import { rgbaImageData } from './image-input.js';
import type { Picture, Timings } from './protocol.js';

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

export function draw(canvas: HTMLCanvasElement, picture: Picture): void {
  canvas.width = picture.width;
  canvas.height = picture.height;
  canvas
    .getContext('2d')!
    .putImageData(new ImageData(new Uint8ClampedArray(picture.rgba), picture.width, picture.height), 0, 0);
}

export function drawImage(canvas: HTMLCanvasElement, image: RgbImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d')!.putImageData(rgbaImageData(image), 0, 0);
}

/** An empty (1×1, transparent) canvas. */
export function blank(canvas: HTMLCanvasElement): void {
  canvas.width = canvas.height = 1;
  canvas.getContext('2d')?.clearRect(0, 0, 1, 1);
}

export function facts(list: HTMLElement, entries: readonly (readonly [string, string])[]): void {
  list.replaceChildren(
    ...entries.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

export function showTimings(table: HTMLElement, timings: Timings): void {
  const longest = Math.max(1, ...timings.map((t) => t.ms));
  table.replaceChildren(
    ...timings.map(({ stage, ms }) => {
      const row = document.createElement('tr');
      const name = document.createElement('td');
      name.textContent = stage;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.max(1, (100 * ms) / longest)}%`;
      name.append(bar);
      const value = document.createElement('td');
      value.textContent = ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
      row.append(name, value);
      return row;
    }),
  );
}

/** ←/→ move between the buttons of a tab list (and select). */
export function tabKeys(buttons: readonly HTMLButtonElement[]): void {
  buttons.forEach((button, i) =>
    button.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
      const next = buttons[(i + (event.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length]!;
      next.focus();
      next.click();
    }),
  );
}

export function dropZone(zone: HTMLElement, onDrop: (transfer: DataTransfer) => void): void {
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    if (event.dataTransfer) onDrop(event.dataTransfer);
  });
}

export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function kilobytes(bytes: number): string {
  return bytes >= 1e6 ? megabytes(bytes) : `${(bytes / 1024).toFixed(1)} KiB`;
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function mebibytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 24 ? 1 : 0)} MiB`;
}

export function millions(count: number): string {
  return count >= 1e6 ? `${(count / 1e6).toFixed(1)} M` : `${(count / 1e3).toFixed(1)} k`;
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
