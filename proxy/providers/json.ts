/**
 * Total accessors over parsed JSON. Provider bodies are untrusted and change
 * shape without notice, so every read answers "absent" instead of throwing.
 */

export type JsonObject = Record<string, unknown>

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Follows object keys; undefined as soon as a step is not an object. */
export function at(value: unknown, ...path: string[]): unknown {
  let current = value
  for (const key of path) {
    if (!isObject(current)) return undefined
    current = current[key]
  }
  return current
}

/** A token count, or null: negative or non-finite numbers are as good as missing. */
export function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null
}

/** A non-empty string, or null: providers send "" where they mean "not yet known". */
export function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null
}

export function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : []
}

/** Non-empty string or array: what a streamed delta looks like when it carries something. */
export function hasContent(value: unknown): boolean {
  return (typeof value === 'string' || Array.isArray(value)) && value.length > 0
}

/** undefined when the text is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
