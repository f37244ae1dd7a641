/**
 * Builds the dashboard into dashboard/dist, which the collector serves on
 * port 8081 (collector/static.ts). `npm run dev:dashboard` serves the sources
 * with hot reload and forwards API calls to a running collector.
 */
import { defineConfig } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'

// The folder of this file, so the build works from any working directory.
const root = decodeURIComponent(new URL('.', import.meta.url).pathname)

export default defineConfig({
  root,
  base: '/',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Chromium/Firefox/Safari from 2023 on: no legacy transforms, smaller output.
    target: 'es2022',
    // One small app: a single JS and CSS file load faster than a split graph.
    cssCodeSplit: false,
    reportCompressedSize: true,
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8081',
      '/healthz': 'http://127.0.0.1:8081',
    },
  },
})
