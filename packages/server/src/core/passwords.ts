// Password hashing: argon2id with OWASP's minimum parameters (19 MiB, t=2, p=1).
import { hash, verify, Algorithm } from '@node-rs/argon2';
import { AppError } from '../errors.js';

const PARAMS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN_CHARS = 8;
/** Bounds the work of each hash (argon2 hashes the whole password first). */
export const PASSWORD_MAX_BYTES = 256;
/**
 * The longest password an account can have: today's 256 bytes, or 256 characters of up to
 * 4 bytes under the earlier policy. A login with a longer one is refused without hashing it.
 */
export const PASSWORD_MAX_LOGIN_BYTES = 1024;

/**
 * Policy (NIST SP 800-63B: length, no composition rules): at least 8 characters, at most 256
 * bytes in UTF-8, and not the username (in any case).
 */
export function checkPasswordPolicy(password: string, username: string): void {
  if ([...password].length < PASSWORD_MIN_CHARS) throw new AppError('weak_password', `The password must be at least ${PASSWORD_MIN_CHARS} characters long.`);
  if (Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES) throw new AppError('weak_password', `The password must be at most ${PASSWORD_MAX_BYTES} bytes long (UTF-8).`);
  if (password.toLowerCase() === username.toLowerCase()) throw new AppError('weak_password', 'The password must not be the username.');
}

export const hashPassword = (password: string): Promise<string> => hash(password, PARAMS);

// Verified when the username is unknown too, so both cases take the same time.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(passwordHash: string | undefined, password: string): Promise<boolean> {
  if (passwordHash === undefined) {
    dummyHash ??= hash('confab-timing-equaliser', PARAMS);
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  return verify(passwordHash, password).catch(() => false);
}
