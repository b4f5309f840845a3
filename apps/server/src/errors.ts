// The server's errors. Every error a client sees is `{ "error": { "code", "message" } }` with one
// of the stable codes below and its HTTP status; configuration errors stop the server at start.

export type ApiErrorCode =
  | 'VALIDATION'
  | 'BAD_REQUEST'
  | 'MALFORMED_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'BODY_TOO_LARGE'
  | 'HEADERS_TOO_LARGE'
  | 'URI_TOO_LONG'
  | 'REQUEST_TIMEOUT'
  | 'UNAUTHORIZED'
  | 'NOT_OWNER'
  | 'NOT_FOUND'
  | 'UNKNOWN_SYMBOL'
  | 'ORDER_NOT_FOUND'
  | 'DUPLICATE_CLIENT_ORDER_ID'
  | 'REJECTED'
  | 'RATE_LIMITED'
  | 'TOO_MANY_CONNECTIONS'
  | 'BACKPRESSURE'
  | 'HALTED'
  | 'SHUTTING_DOWN'
  | 'INTERNAL';

const STATUS: Record<ApiErrorCode, number> = {
  VALIDATION: 400,
  BAD_REQUEST: 400,
  MALFORMED_JSON: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  BODY_TOO_LARGE: 413,
  HEADERS_TOO_LARGE: 431,
  URI_TOO_LONG: 414,
  REQUEST_TIMEOUT: 408,
  UNAUTHORIZED: 401,
  NOT_OWNER: 403,
  NOT_FOUND: 404,
  UNKNOWN_SYMBOL: 404,
  ORDER_NOT_FOUND: 404,
  DUPLICATE_CLIENT_ORDER_ID: 409,
  REJECTED: 409,
  RATE_LIMITED: 429,
  TOO_MANY_CONNECTIONS: 429,
  BACKPRESSURE: 503,
  HALTED: 503,
  SHUTTING_DOWN: 503,
  INTERNAL: 500,
};

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    /** Seconds, for 429 and 503 (the `Retry-After` header). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.status = STATUS[code];
  }

  toJSON(): { error: { code: ApiErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export type ConfigErrorCode = 'INVALID_CONFIG' | 'CONFIG_FILE';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly code: ConfigErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
