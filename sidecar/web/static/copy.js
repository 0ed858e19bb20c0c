// The new guest link's copy and share buttons: shown only where the browser
// can do it (the clipboard needs a secure origin; sharing, a phone or tablet).
"use strict";

(function () {
  var copy = document.getElementById("copy-link");
  var share = document.getElementById("share-link");
  var state = document.getElementById("copy-state");

  function linkOf(button) {
    return document.getElementById(button.getAttribute("data-copy") || button.getAttribute("data-share"));
  }

  if (copy && navigator.clipboard && window.isSecureContext) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      navigator.clipboard.writeText(linkOf(copy).value).then(function () {
        state.textContent = copy.getAttribute("data-copied-text");
      });
    });
  }
  if (share && navigator.share) {
    share.hidden = false;
    share.addEventListener("click", function () {
      navigator
        .share({ title: share.getAttribute("data-share-title"), url: linkOf(share).value })
        .catch(function () {
          // Closed without sharing: nothing to say.
        });
    });
  }
})();
