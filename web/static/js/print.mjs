// The calculation sheet's print button (hidden without JavaScript: the browser's own print works anyway).
const button = document.getElementById("print-button");
if (button) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
