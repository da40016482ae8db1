// Small enhancements; every page works without them.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Filters apply as soon as one is chosen.
  for (const select of document.querySelectorAll("form.search select")) {
    select.addEventListener("change", () => select.form.submit());
  }

  // "/" jumps to the search box, as in most catalogs.
  const search = document.querySelector("form.search input[type=search]");
  document.addEventListener("keydown", (event) => {
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement;
    if (search && event.key === "/" && !typing) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  });

  // A copy button beside every command.
  for (const block of document.querySelectorAll(".snippet pre")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(block.innerText);
        button.textContent = "Copied";
      } catch {
        // Clipboard access needs a secure context; selecting lets the user copy by hand.
        const range = document.createRange();
        range.selectNodeContents(block);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
    block.parentElement.insertBefore(button, block);
  }
});
