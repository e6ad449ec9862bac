// Access tokens: short-lived HS256 JWTs naming the user and the device. Refresh tokens are
// opaque random strings; only their SHA-256 is stored.
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors } from 'jose';
import { asDeviceId, asUserId, type DeviceId, type UserId } from '@confab/protocol';
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

  constructor(secret: string | Uint8Array, accessTtlSec: number) {
    this.#key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
    this.#ttlSec = accessTtlSec;
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

  /** Verifies signature (HS256 only), issuer, audience and expiry. */
  async verify(token: string): Promise<VerifiedClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['sub', 'exp'] });
      if (typeof payload.sub !== 'string' || typeof payload.did !== 'string') throw new AppError('invalid_token');
      return { userId: asUserId(payload.sub), deviceId: asDeviceId(payload.did), expiresAt: (payload.exp ?? 0) * 1000 };
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new AppError('token_expired');
      throw new AppError('invalid_token');
    }
  }
}

export const newRefreshToken = (): string => randomBytes(32).toString('base64url');
export const hashRefreshToken = (token: string): string => createHash('sha256').update(token).digest('hex');
