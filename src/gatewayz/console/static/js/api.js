// The console's only way to the gateway: its JSON API, with the API key in the Authorization
// header (never in a URL). The key lives in sessionStorage: gone when the tab closes.
const STORE = "gatewayz.console.key";

export const session = {
  get key() {
    return sessionStorage.getItem(STORE);
  },
  set(key) {
    sessionStorage.setItem(STORE, key);
  },
  clear() {
    sessionStorage.removeItem(STORE);
  },
};

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headersFor(body, auth) {
  const headers = { Accept: "application/json" };
  if (auth && session.key) headers.Authorization = `Bearer ${session.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return headers;
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let code;
  try {
    const data = await response.json();
    if (data && data.error) {
      message = data.error.message || message;
      code = data.error.code;
    }
  } catch {
    // not JSON: the status line says enough
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("gw:unauthorized"));
  return new ApiError(response.status, message, code);
}

// fetch() with the key; the raw Response (for streams and downloads), or an ApiError.
export async function request(path, { method = "GET", body, auth = true, signal } = {}) {
  const response = await fetch(path, {
    method,
    headers: headersFor(body, auth),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  if (!response.ok) throw await errorOf(response);
  return response;
}

// A JSON call: the parsed body (null for 204), or an ApiError with the gateway's message.
export async function api(path, options = {}) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  return response.json();
}

// A query string from an object, leaving out empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(name, String(value));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// Save a response body as a file (the key stays in the header: no link carries it).
export async function download(path, filename) {
  const response = await request(path);
  const blob = await response.blob();
  const disposition = response.headers.get("content-disposition") || "";
  const named = /filename="([^"]+)"/.exec(disposition);
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = named ? named[1] : filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
