#!/usr/bin/env node
// Runs Tollgate: the prebuilt bundle (bin/prebuilt.mjs) when it was built
// from exactly the sources in this checkout, otherwise the TypeScript sources
// directly through tsx, so there is no required build step between
// `npm install` and `npm start`, and an edited source is never shadowed by an
// older bundle. TOLLGATE_PREBUILT=0 forces the sources.
//
// Under tsx: its require hook rather than its ESM loader. On Node 20, ESM
// loader hooks run on a thread of their own that stays alive, idle, for the
// life of the process and holds ~15 MiB of RSS. The sources stay ES modules;
// tsx compiles each to CommonJS as it is required, and packages that ship
// only ES modules load through Node ≥ 20.19's require(esm). The bundle is the
// same CommonJS, compiled once.
import { createRequire } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freshPrebuilt } from './prebuilt.mjs'

const require = createRequire(import.meta.url)
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const bundle = process.env.TOLLGATE_PREBUILT === '0' ? null : freshPrebuilt({ root })
if (bundle) {
  require(bundle)
} else {
  require('tsx/cjs/api').register()
  require('../cli/main.ts')
}
