/** One image against one prompt record: detect from pixels, then apply GenEval's clause rule. */
import type { PromptRecord } from "../data/prompts.ts"
import type { RgbImage } from "../io/rgb-image.ts"
import { detectObjects } from "./detect.ts"
import { type ImageVerdict, scoreImage } from "./score.ts"

export const evaluateImage = (record: PromptRecord, image: RgbImage): ImageVerdict =>
  scoreImage(record, detectObjects(image))
