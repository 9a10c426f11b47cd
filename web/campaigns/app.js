// The owner's flow over the JSON API: create → recommendations → banners → edit → publish →
// dashboard. No build step, no library: fetch and the DOM.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { draft: null, recJob: null, recs: [], images: null };
const CHANNELS = {
  URINEIGHBOR_TV: "우리동네TV", RINGO_BIZ: "링고비즈", GENIE_TV: "지니TV",
  INSTAGRAM: "Instagram", NAVER_BLOG: "네이버 블로그", KAKAO_CHANNEL: "카카오 채널",
};
const STATUS = { active: "진행 중", approved: "배포 대기", completed: "종료" };

function say(text) { $("status").textContent = text; }

function token() {
  const t = $("token").value.trim();
  if (t) sessionStorage.setItem("token", t);
  return t;
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) {
    const fields = (data?.fieldErrors || []).map((f) => `${f.field}: ${f.message}`).join(", ");
    const err = new Error(`${data?.code || r.status} — ${data?.message || ""} ${fields}`);
    err.body = data;
    throw err;
  }
  return data;
}

// Runs `fn` with its button disabled; errors go to the status line.
function action(button, fn) {
  $(button).addEventListener("click", async (e) => {
    e.preventDefault();
    $(button).disabled = true;
    try { await fn(); } catch (err) { say("오류: " + err.message); } finally { $(button).disabled = false; }
  });
}

async function poll(jobId, label) {
  for (let i = 0; i < 60; i++) {
    const job = await api("GET", `/api/jobs/${jobId}/status`);
    say(`${label}: ${job.status} ${job.progress}%`);
    if (job.status === "COMPLETED") return job;
    if (job.status === "FAILED") throw new Error(job.error || "작업이 실패했습니다");
    await new Promise((ok) => setTimeout(ok, 1000));
  }
  throw new Error("작업이 끝나지 않았습니다");
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function isoDay(offset) {
  const d = new Date(Date.now() + 9 * 3600e3 + offset * 86400e3); // KST
  return d.toISOString().slice(0, 10);
}

action("create", async () => {
  const address = $("address").value.trim();
  const draft = await api("POST", "/api/events/purposes", {
    objective: $("objective").value,
    storeInfo: {
      storeName: $("storeName").value, industry: $("industry").value, region: $("region").value,
      ...(address ? { address } : {}),
    },
  });
  state.draft = draft.eventDraftId;
  $("draftId").textContent = `초안 ${draft.eventDraftId} (${draft.status})`;
  $("step-recommend").hidden = false;
  say("초안을 만들었습니다. 추천을 받아 보세요.");
});

action("recommend", async () => {
  const job = await api("POST", `/api/events/${state.draft}/ai-recommendations`);
  const done = await poll(job.jobId, "추천");
  state.recJob = job.jobId;
  state.recs = done.recommendations;
  $("recs").replaceChildren(...done.recommendations.map((r, i) => el("label", { class: "card" },
    el("input", { type: "radio", name: "rec", value: String(i), ...(i === 0 ? { checked: "" } : {}) }),
    el("strong", { text: r.title }),
    el("span", { text: `경품: ${r.prize}` }), el("br"),
    el("span", { text: r.participationMethod }),
    el("div", { class: "nums", text: `예상 비용 ${r.estimatedCost.toLocaleString()}원 · 참여 ${r.estimatedParticipants.toLocaleString()}명 · ROI ${r.estimatedROI}%` }),
  )));
  $("recs").querySelectorAll("input[name=rec]").forEach((input) =>
    input.addEventListener("change", () => { $("quantity").value = state.recs[input.value].suggestedQuantity; }));
  $("quantity").value = done.recommendations[0].suggestedQuantity;
  $("startDate").value = isoDay(0);
  $("endDate").value = isoDay(14);
  $("choice").hidden = false;
  say("추천 3개가 준비되었습니다.");
});

action("choose", async () => {
  const index = Number(document.querySelector("input[name=rec]:checked").value);
  const detail = await api("PUT", `/api/events/drafts/${state.draft}/recommendation`, {
    jobId: state.recJob, index, prizeType: $("prizeType").value, quantity: Number($("quantity").value),
    startDate: $("startDate").value, endDate: $("endDate").value,
  });
  $("editTitle").value = detail.event.title;
  $("editPrize").value = detail.prizes[0]?.prizeName || "";
  $("editParticipation").value = detail.event.participationMethod || "";
  $("step-banner").hidden = false;
  say(`"${detail.event.title}"(으)로 진행합니다. 배너를 만들어 보세요.`);
});

action("generate", async () => {
  const job = await api("POST", `/api/events/${state.draft}/content-generation`);
  const done = await poll(job.jobId, "배너");
  state.images = done.imageUrls;
  $("images").replaceChildren(...["simple", "fancy", "trendy"].map((style, i) => el("label", {},
    el("input", { type: "radio", name: "banner", value: done.imageUrls[style], ...(i === 0 ? { checked: "" } : {}) }),
    el("img", { src: done.imageUrls[style], alt: style }),
  )));
  $("step-edit").hidden = false;
  say("배너 3개가 준비되었습니다. 하나를 골라 편집하세요.");
});

action("save", async () => {
  const saved = await api("PUT", `/api/events/drafts/${state.draft}/content`, {
    selectedImageUrl: document.querySelector("input[name=banner]:checked").value,
    editedContent: {
      title: $("editTitle").value, prizeText: $("editPrize").value, participationText: $("editParticipation").value,
      backgroundColor: $("bg").value, textColor: $("fg").value, accentColor: $("accent").value,
    },
  });
  $("edited").src = saved.selectedImageUrl;
  $("edited").hidden = false;
  $("channels").replaceChildren(...Object.entries(CHANNELS).map(([type, name], i) => el("label", {},
    el("input", { type: "checkbox", name: "channel", value: type, ...(i < 2 ? { checked: "" } : {}) }), " " + name)));
  $("step-publish").hidden = false;
  say("저장했습니다. 배포할 채널을 고르세요.");
});

action("publish", async () => {
  const selectedChannels = [...document.querySelectorAll("input[name=channel]:checked")].map((c) => ({ channelType: c.value }));
  let results;
  try {
    const published = await api("POST", `/api/events/${state.draft}/publish`, { selectedChannels });
    results = published.distributionResults;
    say(`배포했습니다: ${published.status}`);
  } catch (err) {
    results = err.body?.distributionResults;
    if (!results) throw err;
    say("어느 채널에도 배포하지 못했습니다. 이벤트는 승인 상태로 남아 있으며 다시 배포할 수 있습니다.");
  }
  $("results").replaceChildren(...results.map((r) => el("li", { class: r.status,
    text: `${CHANNELS[r.channelType]}: ${r.status}${r.estimatedReach ? ` · 예상 노출 ${r.estimatedReach.toLocaleString()}` : ""}${r.error ? ` · ${r.error}` : ""}` })));
  await dashboard();
});

async function dashboard() {
  if (!token()) return;
  const board = await api("GET", "/api/events/dashboard");
  $("dashboard").replaceChildren(...Object.entries(STATUS).map(([key, name]) => el("div", { class: "column", id: `board-${key}` },
    el("h3", { text: `${name} (${board[key].length})` }),
    ...board[key].map((e) => el("div", { class: "item", "data-event": e.eventId },
      el("b", { text: e.title }),
      el("span", { class: "count", text: `참여 ${e.participantCount}명` }),
      el("span", { text: ` · 조회 ${e.viewCount} · ${e.period ? `${e.period.startDate} ~ ${e.period.endDate}` : ""}` }),
    )),
  )));
}
action("refresh", dashboard);

$("draft-form").addEventListener("submit", (e) => e.preventDefault());
// A token may come in the URL fragment (#token=…), kept out of server logs.
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
$("token").value = fromHash || sessionStorage.getItem("token") || "";
if ($("token").value) dashboard().catch((err) => say("오류: " + err.message));
