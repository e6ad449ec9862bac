// The web client's bundle: Preact's JSX through esbuild (no Babel plugin needed), one entry,
// hashed file names under assets/ (the node caches those for a year), no inline scripts (the
// node's Content-Security-Policy forbids them).
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
    rollupOptions: {
      onwarn(warning, warn) {
        // zod ships a comment Rollup cannot place (harmless: it only drops it); keep the build output clean.
        if (warning.code === 'INVALID_ANNOTATION' && warning.id?.includes('/zod/')) return;
        warn(warning);
      },
    },
  },
});
