const KOLBO_API_KEY = process.env.KOLBO_API_KEY; // Replace with your API key
const BASE_URL = process.env.KOLBO_BASE_URL;

async function main() {
  // Step 1: Fetch available image models
  const modelsRes = await fetch(`${BASE_URL}/v1/models?type=image`, {
    headers: { "X-API-Key": KOLBO_API_KEY }
  });
  const { models } = await modelsRes.json();
  console.log("Available models:", models.map(m => `${m.identifier} (${m.credits} credits)`));
  // Example identifiers: "nano-banana-2" (8 credits), "nano-banana-pro" (15 credits), "nano-banana-2/4k" (16 credits)

  // Step 2: Use a specific model identifier (nano-banana-2 is recommended for most use cases)
  const response = await fetch(`${BASE_URL}/v1/generate/image`, {
    method: "POST",
    headers: {
      "X-API-Key": KOLBO_API_KEY,
      "Content-Type": "application/json"
    },
    body: JSON.stringify({
      prompt: "A cat wearing a space suit",
      model: "nano-banana-2",
      aspect_ratio: "1:1"
    })
  });
  const { poll_url } = await response.json();

  // Poll for result
  let result;
  do {
    await new Promise((r) => setTimeout(r, 3000));
    const status = await fetch(`${BASE_URL}${poll_url}`, {
      headers: { "X-API-Key": KOLBO_API_KEY }
    });
    result = await status.json();
  } while (result.state === "processing");

  console.log("Image URLs:", result.result.urls);
}

main();
