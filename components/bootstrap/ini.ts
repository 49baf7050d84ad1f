/**
 * Small structured renderers for the non-YAML files a node needs: systemd units (INI) and
 * containerd's config (a TOML subset). Values are data, never interpolated into templates.
 */

/** One INI section; a key with several values is repeated (systemd's list semantics). */
export interface IniSection {
  readonly name: string;
  readonly entries: readonly (readonly [string, string | number | boolean])[];
}

const INI_KEY_RE = /^[A-Za-z][A-Za-z0-9]*$/;

/** Renders systemd unit files: `[Section]` then `Key=Value` lines, sections separated by a blank line. */
export function renderIni(sections: readonly IniSection[]): string {
  return sections
    .map((section) => {
      const lines = section.entries.map(([key, value]) => {
        if (!INI_KEY_RE.test(key)) throw new RangeError(`invalid unit key '${key}' in [${section.name}]`);
        const text = String(value);
        if (/[\r\n]/.test(text)) throw new RangeError(`unit value of ${key} must be one line`);
        return `${key}=${text}`;
      });
      return [`[${section.name}]`, ...lines].join("\n");
    })
    .join("\n\n")
    .concat("\n");
}

/** A TOML table: scalar values and nested tables (enough for containerd's config). */
export interface TomlTable {
  readonly [key: string]: string | number | boolean | TomlTable;
}

function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

function tomlScalar(value: string | number | boolean): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** Renders nested tables as `[a.b."c.d"]` headers with their scalars; tables in key order. */
export function renderToml(root: TomlTable): string {
  const out: string[] = [];
  const walk = (table: TomlTable, path: string[]) => {
    const scalars = Object.entries(table).filter(([, v]) => typeof v !== "object");
    const tables = Object.entries(table).filter(([, v]) => typeof v === "object") as [string, TomlTable][];
    if (scalars.length > 0 || path.length === 0) {
      if (path.length > 0) out.push(`[${path.map(tomlKey).join(".")}]`);
      for (const [k, v] of scalars) out.push(`${tomlKey(k)} = ${tomlScalar(v as string | number | boolean)}`);
      if (scalars.length > 0) out.push("");
    }
    for (const [k, v] of tables) walk(v, [...path, k]);
  };
  walk(root, []);
  return out.join("\n");
}
