// Values Baton reads back from etcd for display (events): JSON objects, tolerant of foreign data.

export function parseJsonValue(value: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(value.toString());
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
  } catch {
    return { raw: value.toString() };
  }
}
