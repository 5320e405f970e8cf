// The console's login form: POSTs the key as JSON (the server sets an HttpOnly cookie), then reloads.
const form = document.getElementById("login");
const error = document.getElementById("login-error");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const r = await fetch("/console/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: document.getElementById("key").value }),
  });
  if (r.status === 204) return location.reload();
  error.textContent = r.status === 401 ? "Wrong key." : `Login failed (${r.status}).`;
  error.hidden = false;
});
