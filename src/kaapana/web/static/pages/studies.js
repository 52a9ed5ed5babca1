// Studies list: a study's series open below it, fetched from the REST API for this project only.
import { api, attempt } from "../api.js";
import { h, pageData } from "../dom.js";
import { initLayout } from "../layout.js";

const { project } = pageData();

class StudySeries extends HTMLElement {
  connectedCallback() {
    this.button = this.querySelector("button");
    this.button.addEventListener("click", () => this.toggle());
  }

  async toggle() {
    const row = this.closest("tr");
    if (this.rows) {
      this.rows.forEach((r) => r.remove());
      this.rows = null;
      this.button.setAttribute("aria-expanded", "false");
      return;
    }
    const query = new URLSearchParams({ project, limit: "1000" });
    const path = `/api/v1/studies/${encodeURIComponent(this.dataset.study)}/series?${query}`;
    const page = await attempt(() => api("GET", path));
    if (!page) return;
    this.rows = page.items.map((series) =>
      h("tr", { class: "series-row" },
        h("td", {}, ""),
        h("td", { colspan: "3" }, `#${series.series_number ?? "–"} ${series.series_description}`),
        h("td", {}, series.modality),
        h("td", {}, series.body_part_examined),
        h("td", {}, series.number_of_series_related_instances)));
    row.after(...this.rows);
    this.button.setAttribute("aria-expanded", "true");
  }
}

customElements.define("kp-study-series", StudySeries);
initLayout();
