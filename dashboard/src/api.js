// Talking to the server: JSON requests under /api/v1 with the API token
// (when the server wants one), server-sent events and NDJSON streams read
// with fetch (EventSource cannot send an Authorization header).

const TOKEN_KEY = 'distributedkube.token';
const listeners = new Set();

export const token = () => localStorage.getItem(TOKEN_KEY) || '';

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
  listeners.forEach((f) => f());
}

/** `f` runs whenever the token changes; answers a function that stops that. */
export const onTokenChange = (f) => {
  listeners.add(f);
  return () => listeners.delete(f);
};

/** Called with the server's message when it answers 401: the app asks for a token. */
let unauthorized = () => {};
export const setUnauthorizedHandler = (f) => {
  unauthorized = f;
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  const h = { ...extra };
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}

async function failure(res) {
  const text = await res.text();
  let message = text || `${res.status} ${res.statusText}`;
  try {
    message = JSON.parse(text).error.message || message;
  } catch (_) {
    /* not JSON: the text itself */
  }
  if (res.status === 401) unauthorized(message);
  return new ApiError(res.status, message);
}

/**
 * A request to /api/v1{path}. `body`: an object (sent as JSON), a string
 * (a YAML or JSON document, sent as it is) or FormData. Answers the JSON
 * body; with `withHeaders`, `{ data, headers }`; with `text`, the body's text.
 */
export async function api(path, { method = 'GET', body, withHeaders = false, text: asText = false } = {}) {
  let payload = body;
  const extra = {};
  if (body !== undefined && typeof body !== 'string' && !(body instanceof FormData)) {
    extra['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  } else if (typeof body === 'string') {
    extra['Content-Type'] = 'text/plain';
  }
  const res = await fetch(`/api/v1${path}`, { method, headers: headers(extra), body: payload });
  if (!res.ok) throw await failure(res);
  const text = await res.text();
  if (asText) return text;
  const data = text ? JSON.parse(text) : null;
  return withHeaders ? { data, headers: res.headers } : data;
}

/** Read a streamed body, calling `onChunk(text)` per decoded piece; resolves at its end. */
async function readStream(path, signal, onChunk) {
  const res = await fetch(`/api/v1${path}`, { headers: headers(), signal });
  if (!res.ok) throw await failure(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onChunk(decoder.decode(value, { stream: true }));
  }
}

/**
 * Follow server-sent events at `path`: `onEvent(name, data)` per event.
 * Reconnects after a break (unless the stream ended on its own and
 * `reconnect` is false). Answers a function that stops following.
 */
export function follow(path, onEvent, { reconnect = true, onError } = {}) {
  const abort = new AbortController();
  let buffer = '';
  const parse = (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
      }
      if (data) {
        try {
          onEvent(name, JSON.parse(data));
        } catch (e) {
          console.error('bad event', e);
        }
      }
    }
  };
  (async () => {
    while (!abort.signal.aborted) {
      try {
        buffer = '';
        await readStream(path, abort.signal, parse);
        if (!reconnect) return;
      } catch (e) {
        if (abort.signal.aborted) return;
        if (onError) onError(e);
        if (e instanceof ApiError && e.status < 500) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return () => abort.abort();
}

/** Follow an NDJSON stream (a build log): `onLine(object)` per line; resolves at its end. */
export async function followLines(path, onLine, signal) {
  let buffer = '';
  await readStream(path, signal, (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (line.trim()) onLine(JSON.parse(line));
    }
  });
}

/** `name` as one URL path segment. */
export const seg = (name) => encodeURIComponent(name);
