// The prebuilt runtime: cli/main.ts and everything it imports, compiled by
// esbuild into one CommonJS file under dist/ (git-ignored), so `tollgate`
// runs plain JavaScript instead of compiling every module through tsx at
// start-up and carrying tsx's per-closure `__name()` wrappers and source
// maps for the life of the process.
//
// A manifest beside the bundle records a sha256 of every file the bundle was
// built from. bin/tollgate.mjs runs the bundle only while every one of those
// files still has that content; after any edit, checkout or deletion it runs
// the sources through tsx instead, so stale code never runs.
//
//   node bin/prebuilt.mjs        build (also run by `npm install` via `prepare`)
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, extname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const MANIFEST = 'tollgate.manifest.json'
const FORMAT = 1

/** The files besides the bundle's own inputs whose change makes a bundle stale. */
const EXTRA_INPUTS = ['package.json', 'tsconfig.json', 'bin/prebuilt.mjs']

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

/**
 * The bundle to run, or null when there is none or any file it was built
 * from changed (content, not mtime: a checkout or a `touch` alone does not
 * make it stale, and an edit that keeps the mtime still does).
 * @param {{ root: string, outDir?: string }} options
 * @returns {string | null} absolute path of the bundle
 */
export function freshPrebuilt({ root, outDir = join(root, 'dist') }) {
  let manifest
  try {
    manifest = JSON.parse(readFileSync(join(outDir, MANIFEST), 'utf8'))
  } catch {
    return null
  }
  if (manifest?.format !== FORMAT || typeof manifest.bundle !== 'string' || typeof manifest.inputs !== 'object') return null
  try {
    for (const [file, digest] of Object.entries(manifest.inputs)) {
      if (sha256(join(root, file)) !== digest) return null
    }
  } catch {
    return null // an input was deleted or cannot be read
  }
  return join(outDir, manifest.bundle)
}

/**
 * Builds the bundle of `entry` and its manifest into `outDir`. Packages stay
 * external: resolved from node_modules at run time, as under tsx.
 * @param {{ root: string, entry?: string, outDir?: string }} options
 * @returns {Promise<string>} absolute path of the bundle
 */
export async function buildPrebuilt({ root, entry = 'cli/main.ts', outDir = join(root, 'dist') }) {
  // esbuild comes with tsx, a dependency, so it is there wherever Tollgate is installed.
  const esbuild = createRequire(import.meta.url)('esbuild')
  mkdirSync(outDir, { recursive: true })
  const inputs = {}
  // Hashed before the build: a later edit to one of them leaves the manifest disagreeing, never agreeing with stale code.
  for (const file of EXTRA_INPUTS) {
    try {
      inputs[file] = sha256(join(root, file))
    } catch {
      // A test's miniature project has no tsconfig or bin/; the real one has all three.
    }
  }
  /** Digest of each source as esbuild was given it, by absolute path. */
  const loaded = new Map()
  const tmp = join(outDir, `.build-${process.pid}.cjs`)
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    outfile: tmp,
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
    plugins: [sourcePlugin(tmp, loaded)],
  })
  for (const file of Object.keys(result.metafile.inputs)) {
    const digest = loaded.get(resolve(root, file))
    if (!digest) throw new Error(`${file}: bundled without being hashed`)
    inputs[file] = digest
  }
  // Named by its content (without the source-map comment, which names the temporary file): one name per build result.
  const code = readFileSync(tmp, 'utf8').replace(/\/\/# sourceMappingURL=\S+\s*$/, '')
  const bundle = `tollgate-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.cjs`
  writeFileSync(tmp, `${code}//# sourceMappingURL=${bundle}.map\n`)
  // Renamed into place: a process loading the same bundle name now never reads a half-written file.
  renameSync(`${tmp}.map`, join(outDir, `${bundle}.map`))
  renameSync(tmp, join(outDir, bundle))
  const manifestTmp = join(outDir, `.${MANIFEST}.${process.pid}`)
  writeFileSync(manifestTmp, `${JSON.stringify({ format: FORMAT, bundle, inputs }, null, 1)}\n`)
  // Renamed into place: a process starting now reads the old manifest or the new one, never half of one.
  renameSync(manifestTmp, join(outDir, MANIFEST))
  for (const name of readdirSync(outDir)) {
    if (/^tollgate-[0-9a-f]{16}\.cjs(\.map)?$/.test(name) && !name.startsWith(bundle)) rmSync(join(outDir, name), { force: true })
  }
  return join(outDir, bundle)
}

const LOADERS = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.json': 'json' }

/**
 * Loads each source once: records the digest of exactly the bytes bundled,
 * and rewrites `import.meta.url` to that source's own URL, relative to the
 * bundle, so the paths it resolves (migrations/, dashboard/dist/) are the
 * same as under tsx.
 */
function sourcePlugin(outfile, loaded) {
  return {
    name: 'tollgate-sources',
    setup(build) {
      build.onLoad({ filter: /\.([mc]?[jt]s|json)$/ }, (args) => {
        const bytes = readFileSync(args.path)
        loaded.set(args.path, createHash('sha256').update(bytes).digest('hex'))
        let contents = bytes.toString('utf8')
        if (contents.includes('import.meta')) {
          const rel = relative(dirname(outfile), args.path).split('\\').join('/')
          contents = contents.replaceAll('import.meta.url', `require('node:url').pathToFileURL(require('node:path').join(__dirname, ${JSON.stringify(rel)})).href`)
          // Anything else under import.meta has no CommonJS meaning; refuse rather than ship a wrong value.
          if (/\bimport\.meta\b/.test(contents.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''))) {
            throw new Error(`${args.path}: only import.meta.url is supported in the prebuilt runtime`)
          }
        }
        return { contents, loader: LOADERS[extname(args.path)] }
      })
    },
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  try {
    const bundle = await buildPrebuilt({ root })
    console.log(`tollgate: prebuilt runtime ${relative(root, bundle)}`)
  } catch (err) {
    // Not fatal: without a bundle bin/tollgate.mjs runs the sources through tsx.
    console.warn(`tollgate: prebuilt runtime not built (${err instanceof Error ? err.message : String(err)}); the sources will run through tsx`)
  }
}
