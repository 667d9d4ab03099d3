// Engram dashboard: small progressive enhancements. Every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "Copy" next to a value shown once (a new API key).
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source || !navigator.clipboard) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (_) {
        button.textContent = "Select and copy by hand";
      }
    });
  }

  // The facts page's as-of slider: moving it sets "true at" (UTC); letting go shows that time.
  for (const slider of document.querySelectorAll("input[type=range][data-target]")) {
    const target = document.getElementById(slider.dataset.target);
    if (!target) continue;
    const show = () => {
      const at = new Date(Number(slider.value) * 1000);
      target.value = at.toISOString().slice(0, 19);
    };
    slider.addEventListener("input", show);
    slider.addEventListener("change", () => {
      show();
      slider.form.requestSubmit();
    });
  }
});
