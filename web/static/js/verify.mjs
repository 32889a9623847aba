// The certificate check in the browser: the same steps as carbon.certificates.check_certificate (Python),
// trusting nothing but the certificate's facts and the registry's Ed25519 public key (32 raw bytes, hex).
//  1. the key id is the SHA-256 of the public key, and the tree head names it;
//  2. the head's Ed25519 signature covers the canonical JSON of {format, key_id, root_hash, timestamp, tree_size};
//  3. the audit entry's content hashes (SHA-256 of its canonical JSON) to its entry hash;
//  4. the RFC 9162 inclusion proof leads from that entry's leaf (SHA-256(0x00 || hash)) to the signed root;
//  5. the entry records the certificate's quantity, beneficiary, purpose, use, year, code and serials.
// checkCertificate() returns {ok, problems, supported}; tests run it on vectors generated in Python.
// The same steps serve the auditor's desk (/audit, audit-page.mjs): verifyTreeHead() checks a kept or current
// head, entryHash() recomputes an entry's hash, verifyInclusion() and verifyConsistency() walk RFC 9162 proofs.

const RECORDED_FACTS = ["quantity_t", "beneficiary", "purpose", "use", "reporting_year", "verification_code", "serials"];
const FORMAT = "shanhai-sth/1";
const encoder = new TextEncoder();

export function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || /[^0-9a-f]/.test(hex)) throw new Error("not lowercase hex");
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

export function bytesToHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The two canonical forms of audit entries (core/audit.py): "rfc8785" — RFC 8785 JCS, which is ECMAScript's own
// JSON.stringify of values with keys sorted by UTF-16 code units — and the legacy "shanhai-json/1"
// (core/canonical.py: keys sorted, no whitespace), which agrees with it for the integers and strings entries hold;
// a non-integer number in a legacy entry is refused rather than guessed (Python writes 1.0 where JS writes 1).
const JCS_SCHEME = "rfc8785";
const LEGACY_SCHEME = "shanhai-json/1";

export function canonicalJson(value, jcs = false) {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !jcs && !Number.isInteger(value)) {
      throw new Error("a non-integer number has no legacy canonical form here");
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map((v) => canonicalJson(v, jcs)).join(",") + "]";
  const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k], jcs)).join(",") + "}";
}

async function sha256(...parts) {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const data = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) { data.set(part, offset); offset += part.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

export const leafHash = (data) => sha256(new Uint8Array([0]), data);
const nodeHash = (left, right) => sha256(new Uint8Array([1]), left, right);

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// RFC 9162 §2.1.3.2, as core/merkle.py verify_inclusion.
export async function verifyInclusion(leaf, index, size, path, root) {
  if (!(index >= 0 && index < size) || path.some((p) => p.length !== 32)) return false;
  let fn = index, sn = size - 1, result = leaf;
  for (const sibling of path) {
    if (sn === 0) return false;
    if (fn & 1 || fn === sn) {
      result = await nodeHash(sibling, result);
      if (!(fn & 1)) { while (fn && !(fn & 1)) { fn >>= 1; sn >>= 1; } }
    } else {
      result = await nodeHash(result, sibling);
    }
    fn >>= 1; sn >>= 1;
  }
  return sn === 0 && equalBytes(result, root);
}

// RFC 9162 §2.1.4.2, as core/merkle.py verify_consistency: the tree (first, firstRoot) is a prefix of
// (second, secondRoot). Equal sizes need an empty proof and equal roots; a malformed proof is false.
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  if (!(first >= 1 && first <= second) || proof.some((p) => p.length !== 32)) return false;
  if (first === second) return proof.length === 0 && equalBytes(firstRoot, secondRoot);
  const path = [...proof];
  if ((first & (first - 1)) === 0) path.unshift(firstRoot);
  if (!path.length) return false;
  let fn = first - 1, sn = second - 1;
  while (fn & 1) { fn >>= 1; sn >>= 1; }
  let firstResult = path[0], secondResult = path[0];
  for (const sibling of path.slice(1)) {
    if (sn === 0) return false;
    if (fn & 1 || fn === sn) {
      firstResult = await nodeHash(sibling, firstResult);
      secondResult = await nodeHash(sibling, secondResult);
      if (!(fn & 1)) { while (fn && !(fn & 1)) { fn >>= 1; sn >>= 1; } }
    } else {
      secondResult = await nodeHash(secondResult, sibling);
    }
    fn >>= 1; sn >>= 1;
  }
  return sn === 0 && equalBytes(firstResult, firstRoot) && equalBytes(secondResult, secondRoot);
}

// Check a signed tree head (shanhai-sth/1) against the registry's public key: the key id, then the Ed25519
// signature over the canonical JSON of its members. Returns {ok, supported, problem}; supported is false when
// this browser has no Ed25519 in WebCrypto.
export async function verifyTreeHead(head, publicKeyHex) {
  const raw = hexToBytes(publicKeyHex);
  const keyId = bytesToHex(await sha256(raw));
  if (!head || head.key_id !== keyId) {
    return { ok: false, supported: true,
      problem: `the tree head names key ${head && head.key_id}, not the given public key ${keyId}` };
  }
  const message = encoder.encode(canonicalJson({ format: FORMAT, key_id: head.key_id, root_hash: head.root_hash,
    timestamp: head.timestamp, tree_size: head.tree_size }));
  let key;
  try {
    key = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    return { ok: false, supported: false, problem: String(error) };
  }
  const valid = await crypto.subtle.verify({ name: "Ed25519" }, key, hexToBytes(head.signature), message);
  return { ok: valid, supported: true, problem: valid ? null : "the tree head's signature does not verify with the public key" };
}

// The entry hash of an audit entry (core/audit.py entry_hash): SHA-256 of its canonical JSON in its scheme.
export async function entryHash(entry) {
  const content = { seq: entry.seq, recorded_at: entry.recorded_at, actor: entry.actor, action: entry.action,
    subject: entry.subject, payload: entry.payload, prev_hash: entry.prev_hash };
  const scheme = entry.scheme === undefined ? LEGACY_SCHEME : entry.scheme;
  let text;
  if (scheme === JCS_SCHEME) text = canonicalJson({ scheme, ...content }, true);  // RFC 8785 (ADR 033)
  else if (scheme === LEGACY_SCHEME) text = canonicalJson(content);
  else throw new Error(`unknown canonicalization scheme ${scheme}`);
  return sha256(encoder.encode(text));
}

export async function ed25519Supported() {
  try {
    await crypto.subtle.importKey("raw", new Uint8Array(32).fill(1), { name: "Ed25519" }, false, ["verify"]);
    return true;
  } catch (error) {
    return error instanceof DOMException && error.name === "DataError";  // the algorithm exists; the key is just bad
  }
}

function sameValue(a, b) {
  return canonicalJson(a === undefined ? null : a) === canonicalJson(b === undefined ? null : b);
}

export async function checkCertificate(facts, publicKeyHex) {
  const problems = [];
  if (!facts || facts.format === undefined) return { ok: false, supported: true, problems: ["not a certificate"] };
  const head = facts.tree_head;
  if (!head) return { ok: false, supported: true, problems: ["the certificate keeps no signed tree head"] };
  let supported = true;
  try {
    const verdict = await verifyTreeHead(head, publicKeyHex);
    if (!verdict.supported) { supported = false; throw new Error(verdict.problem); }
    if (!verdict.ok) problems.push(verdict.problem);
    const entry = facts.audit_entry, proof = facts.inclusion_proof;
    if (!entry || !proof) {
      problems.push("the certificate lacks its audit entry or inclusion proof");
      return { ok: false, supported, problems };
    }
    const recomputed = await entryHash(entry);
    if (bytesToHex(recomputed) !== entry.entry_hash) problems.push("the audit entry's content does not hash to its entry hash");
    if (proof.leaf_index !== entry.seq - 1 || proof.tree_size !== head.tree_size) {
      problems.push("the inclusion proof is not for this entry under the kept tree head");
    }
    const path = proof.audit_path.map(hexToBytes);
    const included = await verifyInclusion(await leafHash(recomputed), proof.leaf_index, proof.tree_size, path,
      hexToBytes(head.root_hash));
    if (!included) problems.push("the inclusion proof does not lead to the signed root: the entry is not in that log");
    const payload = entry.payload && typeof entry.payload === "object" ? entry.payload : {};
    for (const name of RECORDED_FACTS) {
      if (!sameValue(payload[name], facts[name])) problems.push(`${name} differs from what the audit entry records`);
    }
  } catch (error) {
    if (!supported) return { ok: false, supported: false, problems: [String(error)] };
    problems.push(`the certificate is malformed: ${error.message || error}`);
  }
  return { ok: problems.length === 0, supported, problems };
}
