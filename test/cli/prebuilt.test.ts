/**
 * The prebuilt runtime (bin/prebuilt.mjs): it runs only while it matches the
 * sources byte for byte, and a bundle of the real sources behaves like them.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
// @ts-expect-error -- a plain .mjs module without type declarations
import { buildPrebuilt, freshPrebuilt } from '../../bin/prebuilt.mjs'

const run = promisify(execFile)
const root = new URL('../../', import.meta.url).pathname
const scratch = mkdtempSync(join(tmpdir(), 'tollgate-prebuilt-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

type Build = (o: { root: string; entry?: string; outDir?: string }) => Promise<string>
type Fresh = (o: { root: string; outDir?: string }) => string | null
const build = buildPrebuilt as Build
const fresh = freshPrebuilt as Fresh

describe('prebuilt runtime', () => {
  it('is used only while every source it was built from is unchanged', async () => {
    const project = join(scratch, 'project')
    mkdirSync(join(project, 'lib'), { recursive: true })
    writeFileSync(join(project, 'main.ts'), `import { where } from './lib/where.ts'\nconsole.log(JSON.stringify(where()))\n`)
    const where = `export function where(): string { return import.meta.url }\n`
    writeFileSync(join(project, 'lib', 'where.ts'), where)
    const outDir = join(project, 'dist')

    const bundle = await build({ root: project, entry: 'main.ts', outDir })
    expect(fresh({ root: project, outDir })).toBe(bundle)
    // import.meta.url is the source's own URL, as under tsx, not the bundle's.
    const { stdout } = await run(process.execPath, [bundle])
    expect(JSON.parse(stdout)).toBe(pathToFileURL(join(project, 'lib', 'where.ts')).href)

    writeFileSync(join(project, 'lib', 'where.ts'), where.replace('url', 'url + "#edited"'))
    expect(fresh({ root: project, outDir })).toBeNull()
    // Content decides, not the mtime: the original bytes make it current again.
    writeFileSync(join(project, 'lib', 'where.ts'), where)
    expect(fresh({ root: project, outDir })).toBe(bundle)

    rmSync(join(project, 'lib', 'where.ts'))
    expect(fresh({ root: project, outDir })).toBeNull()
    writeFileSync(join(project, 'lib', 'where.ts'), where)
    // A manifest cut short (a crash mid-write elsewhere) means no bundle, not an exception.
    writeFileSync(join(outDir, 'tollgate.manifest.json'), readFileSync(join(outDir, 'tollgate.manifest.json'), 'utf8').slice(0, 40))
    expect(fresh({ root: project, outDir })).toBeNull()
  })

  it('a bundle of the real sources answers like the sources through tsx', async () => {
    // Inside the checkout: the bundle resolves its packages from node_modules above it, as the real one does.
    const outDir = join(root, 'dist', `test-${process.pid}`)
    onTestFinished(() => rmSync(outDir, { recursive: true, force: true }))
    const bundle = await build({ root, outDir })
    expect(fresh({ root, outDir })).toBe(bundle)
    const viaBundle = await run(process.execPath, [bundle, 'migrate', '--help'], { cwd: root })
    const viaTsx = await run(process.execPath, ['bin/tollgate.mjs', 'migrate', '--help'], { cwd: root, env: { ...process.env, TOLLGATE_PREBUILT: '0' } })
    expect(viaBundle.stdout).toBe(viaTsx.stdout)
    expect(viaBundle.stdout).toContain('migrations/')
  })
})
