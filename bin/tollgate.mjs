#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx: no build step between
// `npm install` and `npm start`.
//
// tsx's require hook rather than its ESM loader: on Node 20, ESM loader hooks
// run on a thread of their own that stays alive, idle, for the life of the
// process and holds ~15 MiB of RSS (measured: a standalone proxy idles at
// 100–112 MiB this way, 120–125 MiB with the ESM loader). The sources stay ES
// modules; tsx compiles each to CommonJS as it is required, and packages that
// ship only ES modules load through Node ≥ 20.19's require(esm).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
require('tsx/cjs/api').register()
require('../cli/main.ts')
