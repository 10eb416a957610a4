const KOLBO_API_KEY = process.env.KOLBO_API_KEY; // Replace with your API key
const BASE_URL = process.env.KOLBO_BASE_URL;

async function generateImage(prompt, options = {}) {
  const response = await fetch(`${BASE_URL}/v1/generate/image`, {
    method: "POST",
    headers: {
      "X-API-Key": KOLBO_API_KEY,
      "Content-Type": "application/json"
    },
    body: JSON.stringify({ prompt, ...options })
  });
  const { generation_id, poll_url } = await response.json();

  // Poll for result
  let result;
  do {
    await new Promise((r) => setTimeout(r, 3000));
    const status = await fetch(`${BASE_URL}${poll_url}`, {
      headers: { "X-API-Key": KOLBO_API_KEY }
    });
    result = await status.json();
  } while (result.state === "processing");

  return result;
}

// Smart Select (recommended) — omit model, Kolbo picks the best one
async function main() {
  const result = await generateImage("A cat wearing a space suit", {
    aspect_ratio: "1:1"
  });
  console.log("Image URLs:", result.result.urls);
}

main();
