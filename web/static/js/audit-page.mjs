// The auditor's desk (/audit): the browser's own checks, with the RFC 9162 code the certificate page uses.
//  - the head signed now: its Ed25519 signature against the registry's public key;
//  - a kept head read from a file (never uploaded): its signature, then the consistency proof from its size to
//    today's root (GET /api/v1/audit/proofs/consistency), checked here, not trusted from the server;
//  - any listed entry: its hash recomputed from the row, then its inclusion proof to today's root.
import { bytesToHex, entryHash, hexToBytes, leafHash, verifyConsistency, verifyInclusion, verifyTreeHead } from "./verify.mjs";

const data = JSON.parse(document.getElementById("audit-data").textContent);
const headText = document.getElementById("head-verdict");

async function getJson(url) {
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
  return answer.json();
}

// 1. the head signed now
if (data.head) {
  const verdict = await verifyTreeHead(data.head, data.public_key_hex);
  headText.textContent = verdict.ok ? headText.dataset.ok : verdict.problem || headText.dataset.bad;
  headText.dataset.result = verdict.ok ? "verified" : verdict.supported ? "failed" : "unsupported";
} else {
  headText.textContent = headText.dataset.none;
  headText.dataset.result = "none";
}

// 2. a kept head against today's log. Each problem has a code (its text in the page's language comes from
// #kept-texts) and the English detail, kept as the item's title.
async function checkKept(kept) {
  const problems = [];
  const own = await verifyTreeHead(kept, data.public_key_hex);
  if (!own.supported) return { result: "unsupported", problems: [{ code: "unsupported", detail: own.problem }] };
  if (!own.ok) problems.push({ code: "signature", detail: own.problem });
  const size = data.tree_size;
  if (!Number.isInteger(kept.tree_size) || kept.tree_size < 1) {
    problems.push({ code: "malformed", detail: "the kept head has no tree size" });
  } else if (kept.tree_size > size) {
    problems.push({ code: "removed",
      detail: `the log has ${size} entries but the kept head covers ${kept.tree_size}: entries were removed` });
  } else {
    const proof = await getJson(`/api/v1/audit/proofs/consistency?first=${kept.tree_size}&second=${size}`);
    // today's root: the signed head's when the server signed one; else the log's unsigned root as the proof states it
    const todayRoot = data.head ? data.head.root_hash : proof.second_root_hash;
    const consistent = await verifyConsistency(kept.tree_size, size, hexToBytes(kept.root_hash), hexToBytes(todayRoot),
      proof.proof.map(hexToBytes));
    if (!consistent) {
      problems.push({ code: "rewritten",
        detail: `the consistency proof from ${kept.tree_size} to ${size} entries does not lead from the kept root to today's: history was rewritten` });
    }
  }
  return { result: problems.length ? "inconsistent" : "consistent", problems };
}

const keptBox = document.getElementById("kept-verdict");
const keptText = document.getElementById("kept-text");
const keptList = document.getElementById("kept-problems");
const keptTexts = document.getElementById("kept-texts").dataset;
document.getElementById("kept-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  keptList.replaceChildren();
  keptBox.classList.remove("ok", "bad");
  keptText.textContent = keptText.dataset.checking;
  let verdict;
  try {
    verdict = await checkKept(JSON.parse(await file.text()));
  } catch (error) {
    verdict = { result: "inconsistent",
      problems: [{ code: "malformed", detail: `the file is not a signed tree head: ${error.message || error}` }] };
  }
  keptBox.classList.remove("pending");
  keptBox.classList.add(verdict.result === "consistent" ? "ok" : "bad");
  keptText.textContent = keptText.dataset[verdict.result === "consistent" ? "ok" : verdict.result === "unsupported" ? "unsupported" : "bad"];
  for (const problem of verdict.problems) {
    const item = document.createElement("li");
    item.textContent = keptTexts[problem.code] || problem.detail;
    item.title = problem.detail;
    item.dataset.problem = problem.code;
    keptList.append(item);
  }
  keptBox.dataset.result = verdict.result;
});

// 3. the inclusion proof of a listed entry
const texts = document.getElementById("inclusion-texts").dataset;
const entries = new Map(data.entries.map((e) => [e.seq, e]));
for (const button of document.querySelectorAll(".check-inclusion")) {
  button.addEventListener("click", async () => {
    const seq = Number(button.dataset.seq);
    const out = document.querySelector(`.inclusion-result[data-seq="${seq}"]`);
    const entry = entries.get(seq);
    let ok = false;
    try {
      const recomputed = await entryHash(entry);
      const proof = await getJson(`/api/v1/audit/proofs/inclusion?seq=${seq}&tree_size=${data.tree_size}`);
      const root = data.head ? data.head.root_hash : data.root_hash;
      ok = bytesToHex(recomputed) === entry.entry_hash && await verifyInclusion(await leafHash(recomputed),
        proof.leaf_index, proof.tree_size, proof.audit_path.map(hexToBytes), hexToBytes(root));
    } catch (error) {
      ok = false;
    }
    out.textContent = ok ? texts.ok : texts.bad;
    out.dataset.result = ok ? "included" : "not-included";
  });
}
document.body.dataset.auditReady = "true";
