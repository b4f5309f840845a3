export { demoKeys, KeyStore, RateLimiter, userIdOf, type User } from './auth.js';
export { DEFAULTS, DEMO_INSTRUMENTS, loadConfig, resolveConfig, USAGE, type ApiKeyConfig, type InstrumentConfig, type ServerConfig } from './config.js';
export { ApiError, ConfigError, type ApiErrorCode, type ConfigErrorCode } from './errors.js';
export { EventFeed, type FeedListener, type FeedUpdate } from './event-feed.js';
export { Gateway, type OrderResult, type OrderView } from './gateway.js';
export { MarketState, type OrderState, type OrderStatus, type PublicTrade } from './market-state.js';
export { startServer, type RunningServer, type StartOptions } from './server.js';
export { placeOrderSchema } from './http.js';
export { parsePlaceOrder, type PlaceOrder } from './requests.js';
