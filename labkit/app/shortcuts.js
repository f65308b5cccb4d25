// Keyboard shortcuts of the Annotate tab and click-to-zoom on its images.
// Loaded into the page's <head> by app.ui.launch_kwargs(). Keys act only while the Annotate
// tab is visible and no text field has the focus (Escape leaves a text field):
//   A B C D  toggle a candidate as acceptable     N  none acceptable (clears A-D)
//   Enter    save the label and go to the next     U  undo your last label
//   F        toggle "flag for review"              ←/→  previous / next item
(function () {
  "use strict";
  if (window.__labkitShortcuts) return;
  window.__labkitShortcuts = true;

  function panelVisible() {
    var panel = document.getElementById("annotate-panel");
    return !!(panel && panel.offsetParent !== null);
  }

  function typing(el) {
    if (!el) return false;
    var tag = (el.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "select" || el.isContentEditable) return true;
    if (tag === "input") {
      var type = (el.type || "text").toLowerCase();
      return ["checkbox", "radio", "button", "submit", "range"].indexOf(type) < 0;
    }
    return false;
  }

  function choiceInputs() {
    // The CheckboxGroup's inputs keyed by their label text (A, B, C, D, N).
    var out = {};
    var box = document.getElementById("accept-box");
    if (!box) return out;
    box.querySelectorAll("label").forEach(function (label) {
      var input = label.querySelector("input[type=checkbox]");
      if (input) out[label.textContent.trim()] = input;
    });
    return out;
  }

  function setChoice(input, checked) {
    if (input && input.checked !== checked) input.click();
  }

  function clickById(id) {
    var el = document.getElementById(id);
    if (!el) return false;
    var button = el.tagName.toLowerCase() === "button" ? el : el.querySelector("button");
    (button || el).click();
    return true;
  }

  function toggleFlag() {
    var box = document.getElementById("flag-box");
    var input = box && box.querySelector("input[type=checkbox]");
    if (input) input.click();
  }

  document.addEventListener("keydown", function (event) {
    if (!panelVisible()) return;
    if (event.key === "Escape" && typing(document.activeElement)) {
      document.activeElement.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(document.activeElement)) return;
    var key = event.key.length === 1 ? event.key.toUpperCase() : event.key;
    var inputs = choiceInputs();
    var handled = true;
    if ("ABCD".indexOf(key) >= 0 && key.length === 1) {
      setChoice(inputs["N"], false);
      if (inputs[key]) inputs[key].click();
    } else if (key === "N") {
      "ABCD".split("").forEach(function (l) { setChoice(inputs[l], false); });
      setChoice(inputs["N"], true);
    } else if (key === "Enter") {
      clickById("save-btn");
    } else if (key === "U") {
      clickById("undo-btn");
    } else if (key === "F") {
      toggleFlag();
    } else if (key === "ArrowRight") {
      clickById("next-btn");
    } else if (key === "ArrowLeft") {
      clickById("prev-btn");
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    }
  });

  // Click an image in the Annotate tab to zoom 2.5x around the pointer; click again to reset.
  document.addEventListener("click", function (event) {
    var img = event.target;
    if (!img || img.tagName !== "IMG" || !img.closest(".zoomable")) return;
    img.classList.toggle("zoomed");
    if (!img.classList.contains("zoomed")) img.style.transformOrigin = "";
  });
  document.addEventListener("mousemove", function (event) {
    var img = event.target;
    if (!img || img.tagName !== "IMG" || !img.classList.contains("zoomed")) return;
    var r = img.getBoundingClientRect();
    img.style.transformOrigin = ((event.clientX - r.left) / r.width * 100) + "% " + ((event.clientY - r.top) / r.height * 100) + "%";
  });
})();
