// A plain (ustar) tar archive of the files of a picked folder, so a folder
// can be uploaded as `algorithm apply` uploads one: the server unpacks
// tar, tar.gz and zip.

const BLOCK = 512;

function header(name, size, mtime) {
  const h = new Uint8Array(BLOCK);
  const put = (text, offset, length) => {
    const bytes = new TextEncoder().encode(text);
    h.set(bytes.subarray(0, length), offset);
  };
  const octal = (n, length) => n.toString(8).padStart(length - 1, '0');
  let prefix = '';
  if (new TextEncoder().encode(name).length > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || name.length - cut - 1 > 100) throw new Error(`path too long for a tar archive: ${name}`);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(Math.floor(mtime / 1000), 12), 136, 12);
  put('        ', 148, 8); // the checksum counts itself as spaces
  put('0', 156, 1);
  put('ustar\u000000', 257, 8);
  put(prefix, 345, 155);
  const sum = h.reduce((a, b) => a + b, 0);
  put(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8);
  return h;
}

/** files: [{path, file}] → a Blob holding the tar archive. */
export async function tarOf(files) {
  const parts = [];
  for (const { path, file } of files) {
    parts.push(header(path, file.size, file.lastModified || Date.now()));
    parts.push(new Uint8Array(await file.arrayBuffer()));
    const pad = (BLOCK - (file.size % BLOCK)) % BLOCK;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return new Blob(parts, { type: 'application/x-tar' });
}
