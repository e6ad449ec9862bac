// Accounts and device sessions: register, log in, rotate refresh tokens, log out, and
// authenticate an access token (signature, expiry, and that its device is not logged out).
import type { DeviceId, Session, UserId } from '@confab/protocol';
import { AppError } from '../errors.js';
import { newDeviceId, newUserId } from '../ids.js';
import type { Store, UserRecord } from '../ports/store.js';
import { PASSWORD_MAX_LOGIN_BYTES, checkPasswordPolicy, hashPassword, verifyPassword } from './passwords.js';
import { hashRefreshToken, newRefreshToken, type TokenIssuer, type VerifiedClaims } from './tokens.js';

export class AuthService {
  constructor(
    private readonly store: Store,
    private readonly tokens: TokenIssuer,
    private readonly refreshTtlSec: number,
    /** Called when a device is logged out or revoked, so its open connections can be closed. */
    private readonly onRevoked: (userId: UserId, deviceId: DeviceId) => void = () => undefined,
    private readonly now: () => number = Date.now,
    /** Told of every password hashed (`hash`: register) or checked (`verify`: login): the most expensive work an anonymous client can cause. */
    private readonly onPasswordWork: (op: 'hash' | 'verify') => void = () => undefined,
  ) {}

  async register(username: string, password: string, deviceName?: string): Promise<Session> {
    checkPasswordPolicy(password, username);
    // A taken name is refused before the password is hashed: a flood of attempts at one name costs a lookup each, not an argon2id hash.
    if (await this.store.userByUsername(username)) throw new AppError('username_taken', `The username "${username}" is taken.`);
    const user: UserRecord = { id: newUserId(), username, passwordHash: await this.#hash(password), createdAt: this.now() };
    if (!(await this.store.createUser(user))) throw new AppError('username_taken', `The username "${username}" is taken.`);
    return this.#newDevice(user, deviceName);
  }

  async login(username: string, password: string, deviceName?: string): Promise<Session> {
    // No account has a password this long: refused without hashing (whether or not the user exists).
    if (Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_LOGIN_BYTES) throw new AppError('invalid_credentials');
    const user = await this.store.userByUsername(username);
    this.onPasswordWork('verify');
    const ok = await verifyPassword(user?.passwordHash, password);
    if (!user || !ok) throw new AppError('invalid_credentials');
    return this.#newDevice(user, deviceName);
  }

  async refresh(refreshToken: string): Promise<Session> {
    const now = this.now();
    const next = newRefreshToken();
    const r = await this.store.rotateRefreshToken(hashRefreshToken(refreshToken), { tokenHash: hashRefreshToken(next), createdAt: now, expiresAt: now + this.refreshTtlSec * 1000 }, now);
    if (r.status === 'reused') {
      const device = await this.store.device(r.deviceId);
      if (device) this.onRevoked(device.userId, device.id);
    }
    if (r.status !== 'ok') throw new AppError('invalid_refresh_token');
    const user = await this.store.userById(r.userId);
    if (!user) throw new AppError('invalid_refresh_token');
    return this.#session(user, r.deviceId, next);
  }

  async logout(userId: UserId, deviceId: DeviceId): Promise<void> {
    await this.store.revokeDevice(deviceId, this.now());
    this.onRevoked(userId, deviceId);
  }

  /** The caller of a request or connection; throws invalid_token / token_expired. */
  async authenticate(token: string): Promise<VerifiedClaims & { username: string }> {
    const claims = await this.tokens.verify(token);
    const device = await this.store.device(claims.deviceId);
    if (!device || device.revokedAt !== null || device.userId !== claims.userId) throw new AppError('invalid_token');
    const user = await this.store.userById(claims.userId);
    if (!user) throw new AppError('invalid_token');
    return { ...claims, username: user.username };
  }

  #hash(password: string): Promise<string> {
    this.onPasswordWork('hash');
    return hashPassword(password);
  }

  async #newDevice(user: UserRecord, deviceName?: string): Promise<Session> {
    const now = this.now();
    const deviceId = newDeviceId();
    const refresh = newRefreshToken();
    await this.store.createDevice(
      { id: deviceId, userId: user.id, name: deviceName ?? null, createdAt: now, revokedAt: null },
      { tokenHash: hashRefreshToken(refresh), deviceId, userId: user.id, createdAt: now, expiresAt: now + this.refreshTtlSec * 1000 },
    );
    return this.#session(user, deviceId, refresh);
  }

  async #session(user: UserRecord, deviceId: DeviceId, refreshToken: string): Promise<Session> {
    const accessToken = await this.tokens.issue({ userId: user.id, deviceId });
    return {
      user: { id: user.id, username: user.username, createdAt: user.createdAt },
      deviceId, accessToken, expiresIn: this.tokens.accessTtlSec, refreshToken,
    };
  }
}
