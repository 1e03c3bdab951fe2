/**
 * RFC 4180 text/csv: CRLF between records, a field in double quotes when it holds a comma, a
 * quote, CR or LF, with its quotes doubled. A few lines do better than a dependency here.
 * Text that a spreadsheet would run as a formula (=, +, -, @, tab or CR first; OWASP "CSV
 * Injection") is led by a single quote: a reason typed by one person is read by another.
 */
export type CsvValue = string | number | bigint | null;

export function toCsv(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  return [header, ...rows].map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}

/** A text field (a name, a reason): defused against formula injection, then quoted as needed. */
export function csvText(value: string | null): string | null {
  return value !== null && /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

function field(value: CsvValue): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
