import os
import requests
import time

KOLBO_API_KEY = os.environ["KOLBO_API_KEY"]  # Replace with your API key
BASE_URL = os.environ["KOLBO_BASE_URL"]
HEADERS = {"X-API-Key": KOLBO_API_KEY}

# Step 1: Fetch available image models
models_response = requests.get(
    f"{BASE_URL}/v1/models?type=image",
    headers=HEADERS
)
models = models_response.json()["models"]

# Step 2: Pick a model (e.g. the first one)
chosen_model = models[0]["identifier"]
print(f"Using model: {chosen_model}")

# Step 3: Generate with that model
response = requests.post(
    f"{BASE_URL}/v1/generate/image",
    headers=HEADERS,
    json={
        "prompt": "A mountain landscape at sunset",
        "model": chosen_model,
        "aspect_ratio": "16:9"
    }
)
gen = response.json()

# Poll for result
while True:
    time.sleep(3)
    status = requests.get(
        f"{BASE_URL}{gen['poll_url']}",
        headers=HEADERS
    ).json()
    if status["state"] != "processing":
        break

print("Image URLs:", status["result"]["urls"])
