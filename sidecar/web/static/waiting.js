// The waiting page and the start page wait for a room to open without
// reloading themselves: they ask /auth/room-state at the pace it gives and go
// on once the room is open, saying so once in their status line (role=status,
// which screen readers read when it changes). Without JavaScript the pages
// refresh themselves instead (<noscript>).
"use strict";

(function () {
  var status = document.getElementById("room-state");
  if (!status) {
    return;
  }
  var room = status.getAttribute("data-room");
  var showsLinks = status.getAttribute("data-then") === "show-links";
  var next = Number(status.getAttribute("data-next")) || 5;

  function later(seconds) {
    window.setTimeout(ask, Math.max(1, seconds) * 1000);
  }

  function announce() {
    status.textContent = status.getAttribute("data-open-text");
  }

  // The start page: the same page fetched again holds the app links now.
  function showLinks() {
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (reply) {
        return reply.text();
      })
      .then(function (html) {
        var fresh = new DOMParser()
          .parseFromString(html, "text/html")
          .getElementById("room-links");
        var here = document.getElementById("room-links");
        if (!fresh || !here || !fresh.firstElementChild) {
          later(next);
          return;
        }
        here.replaceChildren.apply(
          here,
          Array.prototype.map.call(fresh.childNodes, function (node) {
            return document.importNode(node, true);
          })
        );
        announce();
      });
  }

  function ask() {
    fetch("/auth/room-state?room=" + encodeURIComponent(room), {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    })
      .then(function (reply) {
        return reply.json();
      })
      .then(function (answer) {
        if (answer.state === "waiting") {
          next = answer.next;
          later(next);
        } else if (answer.state === "open" && showsLinks) {
          return showLinks();
        } else if (answer.state === "open") {
          announce();
          window.location.replace(answer.go);
        } else {
          // Logged out, invitation withdrawn, ...: the page itself says what applies.
          window.location.replace(showsLinks ? window.location.href : answer.go);
        }
      })
      .catch(function () {
        later(next);
      });
  }

  later(next);
})();
