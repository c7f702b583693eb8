import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_PATH } from './services.ts';

/**
 * Headless Debian Chromium. The flags keep it off the network: this machine has none, and
 * background requests would otherwise be refused noisily.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
