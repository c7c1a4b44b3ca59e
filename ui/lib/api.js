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
    headers: { "content-type": "application/json", authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` },
    body: JSON.stringify(body),
  });
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new ApiError("ui.bad_response", `The server answered HTTP ${response.status}.`);
  }
  if (!answer.ok) {
    if (response.status === 401 && !signingIn) signOut();
    throw new ApiError(answer.error.code, answer.error.message);
  }
  return answer.result;
}
