// The public JSON API: every call is `POST /api/<call>` with the browser tab's token.

import { signOut } from "./session.js";

export const TOKEN_KEY = "switchyard.token";

export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Calls `POST /api/<call>`; resolves to `result` or throws ApiError(code, message). A refused
 * token signs out, except while signing in (`signingIn`), where the form says so. */
export async function api(call, body = {}, { signingIn = false } = {}) {
  const response = await fetch(`/api/${call}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: bearer() },
    body: JSON.stringify(body),
  });
  let answer;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  return settle(response.status, answer, signingIn);
}

const bearer = () => `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}`;

function settle(status, answer, signingIn = false) {
  if (!answer || typeof answer.ok !== "boolean") throw new ApiError("ui.bad_response", `The server answered HTTP ${status}.`);
  if (!answer.ok) {
    if (status === 401 && !signingIn) signOut();
    throw new ApiError(answer.error.code, answer.error.message);
  }
  return answer.result;
}

/** Sends a file as the body of `POST /api/<call>?<query>` (XMLHttpRequest, for its upload
 * progress: `onProgress(sentBytes, totalBytes)`); resolves like `api`. Aborting `signal` stops
 * the upload (the server then keeps nothing of it). */
export function upload(call, query, file, contentType, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/${call}?${new URLSearchParams(query)}`);
    xhr.setRequestHeader("authorization", bearer());
    xhr.setRequestHeader("content-type", contentType);
    xhr.upload.addEventListener("progress", (event) => onProgress?.(event.loaded, event.lengthComputable ? event.total : file.size));
    xhr.addEventListener("load", () => {
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        // settle() says what the server answered.
      }
      try {
        resolve(settle(xhr.status, answer));
      } catch (error) {
        reject(error);
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError("ui.network", "The upload did not reach the server.")));
    xhr.addEventListener("abort", () => reject(new ApiError("ui.aborted", "The upload was stopped.")));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(file);
  });
}
