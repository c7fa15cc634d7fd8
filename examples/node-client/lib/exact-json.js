// JSON text in which BigInt values are written as exact integers.
//
// JSON.stringify refuses BigInt, and a timestamp converted to a Number loses its last digits
// above 2^53 (9007199254740993 would be written 9007199254740992). MEGA timestamps are i64, so
// the driver writes its replies with this instead: every BigInt as its decimal digits, the rest
// as JSON.stringify would.

export function stringify(value) {
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : stringify(item))).join(',')}]`;
      const fields = [];
      for (const [key, item] of Object.entries(value)) {
        if (item !== undefined && typeof item !== 'function') fields.push(`${JSON.stringify(key)}:${stringify(item)}`);
      }
      return `{${fields.join(',')}}`;
    }
    default:
      return 'null';
  }
}
