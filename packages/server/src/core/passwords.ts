// Password hashing: argon2id with OWASP's minimum parameters (19 MiB, t=2, p=1).
import { hash, verify, Algorithm } from '@node-rs/argon2';
import { AppError } from '../errors.js';

const PARAMS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Policy: 8 to 256 characters (NIST SP 800-63B: length, no composition rules). */
export function checkPasswordPolicy(password: string): void {
  const length = [...password].length;
  if (length < 8 || length > 256) throw new AppError('weak_password', 'The password must be 8 to 256 characters long.');
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
