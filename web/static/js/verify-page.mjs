// The /verify/{code} page: run the browser's own check and show its verdict beside the server's.
import { checkCertificate } from "./verify.mjs";

const data = JSON.parse(document.getElementById("verification-data").textContent);
const box = document.getElementById("browser-verdict");
const text = document.getElementById("browser-verdict-text");
const list = document.getElementById("browser-problems");

const result = await checkCertificate(data.facts, data.public_key_hex);
box.classList.remove("pending");
if (!result.supported) {
  box.classList.add("unsupported");
  text.textContent = text.dataset.unsupported;
} else if (result.ok) {
  box.classList.add("ok");
  text.textContent = text.dataset.ok;
} else {
  box.classList.add("bad");
  text.textContent = text.dataset.bad;
  for (const problem of result.problems) {
    const item = document.createElement("li");
    item.textContent = problem;
    list.append(item);
  }
}
box.dataset.result = result.ok ? "verified" : result.supported ? "failed" : "unsupported";
