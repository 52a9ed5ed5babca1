// Splitting a multipart/related answer (WADO-RS frames) into its parts' bytes.

function boundaryOf(contentType) {
  const match = /boundary="?([^";]+)"?/i.exec(contentType ?? "");
  if (!match) throw new Error(`no boundary in the Content-Type ${contentType}`);
  return match[1];
}

function indexOf(bytes, pattern, from) {
  const firstByte = pattern[0];
  outer: for (let i = bytes.indexOf(firstByte, from); i !== -1 && i <= bytes.length - pattern.length;
    i = bytes.indexOf(firstByte, i + 1)) {
    for (let j = 1; j < pattern.length; j += 1) if (bytes[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

// The body of every part, in order, as views into the one buffer.
export function parts(buffer, contentType) {
  const bytes = new Uint8Array(buffer);
  const delimiter = new TextEncoder().encode(`--${boundaryOf(contentType)}`);
  const headerEnd = new TextEncoder().encode("\r\n\r\n");
  const found = [];
  let at = indexOf(bytes, delimiter, 0);
  while (at !== -1) {
    const afterDelimiter = at + delimiter.length;
    if (bytes[afterDelimiter] === 45 && bytes[afterDelimiter + 1] === 45) break; // "--": the end
    const headers = indexOf(bytes, headerEnd, afterDelimiter);
    if (headers === -1) break;
    const start = headers + headerEnd.length;
    const next = indexOf(bytes, delimiter, start);
    if (next === -1) break;
    found.push(bytes.subarray(start, next - 2)); // the CRLF before the delimiter is not content
    at = next;
  }
  return found;
}

export async function fetchParts(url, accept) {
  const response = await fetch(url, { headers: { Accept: accept }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return parts(await response.arrayBuffer(), response.headers.get("Content-Type"));
}
