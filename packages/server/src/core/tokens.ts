// Access tokens: short-lived HS256 JWTs naming the user and the device. Refresh tokens are
// opaque random strings; only their SHA-256 is stored.
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors } from 'jose';
import { Id, asDeviceId, asUserId, type DeviceId, type UserId } from '@confab/protocol';
import { AppError } from '../errors.js';

const ISSUER = 'confab';
const AUDIENCE = 'confab';

export interface AccessClaims {
  userId: UserId;
  deviceId: DeviceId;
}

export interface VerifiedClaims extends AccessClaims {
  /** When the token expires (ms since epoch). */
  expiresAt: number;
}

export class TokenIssuer {
  readonly #key: Uint8Array;
  readonly #ttlSec: number;
  readonly #skewSec: number;

  /**
   * @param clockSkewSec how far in the future `iat` and `nbf` may be (another node's clock may
   * run ahead of this one); `exp` is enforced without tolerance.
   */
  constructor(secret: string | Uint8Array, accessTtlSec: number, clockSkewSec = 30, private readonly now: () => number = Date.now) {
    this.#key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
    this.#ttlSec = accessTtlSec;
    this.#skewSec = clockSkewSec;
  }

  get accessTtlSec(): number {
    return this.#ttlSec;
  }

  issue(claims: AccessClaims): Promise<string> {
    return new SignJWT({ did: claims.deviceId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.userId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${this.#ttlSec}s`)
      .sign(this.#key);
  }

  /**
   * Verifies the signature (HS256 only: `none`, RS*, ES* and the other HMACs are refused),
   * issuer, audience, expiry (strict), `iat` and `nbf` (not in the future beyond the clock
   * skew), and that `sub` and `did` are ids.
   */
  async verify(token: string): Promise<VerifiedClaims> {
    let exp: number;
    let sub: unknown;
    let did: unknown;
    try {
      const nowMs = this.now();
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['sub', 'exp', 'iat'],
        clockTolerance: this.#skewSec, currentDate: new Date(nowMs),
      });
      exp = payload.exp!;
      if (exp * 1000 <= nowMs) throw new errors.JWTExpired('"exp" claim timestamp check failed', payload);
      // jose checks `iat` only together with a maximum token age.
      if (payload.iat! > nowMs / 1000 + this.#skewSec) throw new AppError('invalid_token', 'The access token is not valid yet.');
      sub = payload.sub;
      did = payload.did;
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new AppError('token_expired');
      if (err instanceof AppError) throw err;
      if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf') throw new AppError('invalid_token', 'The access token is not valid yet.');
      throw new AppError('invalid_token');
    }
    if (!Id.safeParse(sub).success || !Id.safeParse(did).success) throw new AppError('invalid_token');
    return { userId: asUserId(sub as string), deviceId: asDeviceId(did as string), expiresAt: exp * 1000 };
  }
}

export const newRefreshToken = (): string => randomBytes(32).toString('base64url');
export const hashRefreshToken = (token: string): string => createHash('sha256').update(token).digest('hex');
