/*
 * Live refresh for the dashboard, without a page reload.
 *
 * A region <div data-live-url="..." data-live-state="running|done" data-live-interval="1000"
 * [data-live-idle="10000"]> is fetched again from its URL every interval while its state is
 * "running". The server answers with the same region rendered afresh; its children replace the
 * old ones. "done" stops the polling, or slows it to data-live-idle when that is set (a list
 * where new rows may still appear). Open <details id=...> and the scroll position of
 * [data-keep-scroll][id] elements survive a refresh, and [data-live-keep][id] parts (a form being
 * typed in) are kept as they are. Links marked data-node-link select a node
 * without leaving the page. No inline handlers, no eval: works under a strict CSP.
 */
(function () {
  "use strict";

  var MAX_BACKOFF_MS = 10000;

  function Region(element) {
    this.element = element;
    this.timer = null;
    this.inFlight = false;
    this.failures = 0;
    this.revealSelection = false;
    this.indicator = document.querySelector("[data-live-indicator]");
  }

  Region.prototype.interval = function () {
    var el = this.element;
    if (this.failures > 0) {
      return Math.min(1000 * Math.pow(2, this.failures), MAX_BACKOFF_MS);
    }
    if (el.dataset.liveState === "running") {
      return parseInt(el.dataset.liveInterval || "1000", 10);
    }
    return el.dataset.liveIdle ? parseInt(el.dataset.liveIdle, 10) : null;
  };

  Region.prototype.schedule = function () {
    var self = this;
    var wait = this.interval();
    clearTimeout(this.timer);
    this.show();
    if (wait === null || document.hidden) {
      return;
    }
    this.timer = setTimeout(function () { self.refresh(); }, wait);
  };

  Region.prototype.show = function () {
    if (!this.indicator) {
      return;
    }
    var running = this.element.dataset.liveState === "running";
    this.indicator.classList.toggle("stale", this.failures > 0);
    this.indicator.hidden = !running && !this.element.dataset.liveIdle;
    if (this.failures > 0) {
      this.indicator.textContent = "Reconnecting…";
    } else if (document.hidden) {
      this.indicator.textContent = "Paused";
    } else {
      this.indicator.textContent = running ? "Live" : "Watching for new runs";
    }
  };

  Region.prototype.refresh = function () {
    var self = this;
    if (this.inFlight) {
      return;
    }
    this.inFlight = true;
    clearTimeout(this.timer);
    fetch(this.element.dataset.liveUrl, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "live.js" },
      cache: "no-store",
    })
      .then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403) {
          // Logged out meanwhile: a full load shows the login page.
          window.location.reload();
          throw new Error("session ended");
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        self.swap(html);
        self.failures = 0;
        var detail = self.revealSelection && document.getElementById("node-detail");
        if (detail) {
          detail.scrollIntoView({ block: "nearest", behavior: "smooth" });
        }
        self.revealSelection = false;
      })
      .catch(function () {
        self.failures += 1;
      })
      .then(function () {
        self.inFlight = false;
        self.schedule();
      });
  };

  Region.prototype.swap = function (html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = template.content.querySelector("[data-live-url]");
    if (!fresh) {
      throw new Error("no live region in the response");
    }
    var open = {};
    this.element.querySelectorAll("details[id]").forEach(function (d) { open[d.id] = d.open; });
    var scrolls = {};
    this.element.querySelectorAll("[data-keep-scroll][id]").forEach(function (el) {
      scrolls[el.id] = [el.scrollLeft, el.scrollTop];
    });
    // Parts the user is working in (a form being typed) stay as they are.
    var element = this.element;
    fresh.querySelectorAll("[data-live-keep][id]").forEach(function (part) {
      var current = element.querySelector("#" + CSS.escape(part.id));
      if (current) {
        part.replaceWith(current);
      }
    });
    element.replaceChildren.apply(element, Array.prototype.slice.call(fresh.childNodes));
    this.element.dataset.liveState = fresh.dataset.liveState;
    this.element.querySelectorAll("details[id]").forEach(function (d) {
      if (d.id in open) {
        d.open = open[d.id];
      }
    });
    Object.keys(scrolls).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) {
        el.scrollLeft = scrolls[id][0];
        el.scrollTop = scrolls[id][1];
      }
    });
  };

  // Selecting a node: the page's URL and the region's URL both carry ?node=, no reload.
  Region.prototype.select = function (pageUrl) {
    var node = new URL(pageUrl, window.location.href).searchParams.get("node");
    var url = new URL(this.element.dataset.liveUrl, window.location.href);
    if (node) {
      url.searchParams.set("node", node);
    } else {
      url.searchParams.delete("node");
    }
    this.element.dataset.liveUrl = url.pathname + url.search;
    this.revealSelection = Boolean(node);
    this.refresh();
  };

  var regions = [];
  document.querySelectorAll("[data-live-url]").forEach(function (element) {
    var region = new Region(element);
    regions.push(region);
    region.schedule();
  });

  document.addEventListener("visibilitychange", function () {
    regions.forEach(function (region) {
      if (document.hidden) {
        clearTimeout(region.timer);
        region.show();
      } else {
        region.refresh();
      }
    });
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-node-link]") : null;
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
      return;
    }
    var region = regions.find(function (r) { return r.element.contains(link); });
    if (!region) {
      return;
    }
    event.preventDefault();
    // An SVG <a> has no string .href: resolve its attribute against the page.
    var href = new URL(link.getAttribute("href"), window.location.href).href;
    window.history.pushState({ node: true }, "", href);
    region.select(href);
  });

  window.addEventListener("popstate", function () {
    regions.forEach(function (region) { region.select(window.location.href); });
  });
})();
