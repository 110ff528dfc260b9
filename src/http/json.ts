export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

/** The REST error shape: `error` is the HTTP reason, `message` what to change, `parameter` which input. */
export function jsonError(
  status: number,
  error: string,
  message: string,
  extra: Record<string, unknown> = {},
) {
  return jsonResponse({ error, message, ...extra }, status);
}
